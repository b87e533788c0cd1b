#!/usr/bin/env python3
"""Forecasts from short histories: for every week of each forecast set, `viewcast forecast`
(defaults) on the WEEKS weeks before it (4 unless set), scored on that week against the
seasonal-naive forecast (rMAE, < 1 beats it). Prints the geometric mean per set, the mean
coverage of the 95% interval and the worst windows. Usage, from the project root after `cargo build --release`:
    python3 benches/short_histories.py            # WEEKS=3 python3 benches/... for 3 weeks
"""
import csv, math, os, subprocess, tempfile

BIN = os.environ.get('BIN', 'target/release/viewcast')
WEEKS = int(os.environ.get('WEEKS', '4'))
ARGS = os.environ.get('FCARGS', '').split()
DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'forecast')
SETS = [('taylor.csv', 336), ('elecdemand.csv', 336), ('nyc_taxi_hourly.csv', 168)]

tmp = os.path.join(tempfile.mkdtemp(), 'history.csv')
for name, week in SETS:
    rows = [(r['timestamp'], float(r['value'])) for r in csv.DictReader(open(os.path.join(DATA, name)))]
    scores, inside = [], []
    for end in range(len(rows) - week, WEEKS * week - 1, -week):
        history, actual = rows[end - WEEKS * week:end], [v for _, v in rows[end:end + week]]
        with open(tmp, 'w') as f:
            f.write('timestamp,value\n')
            f.writelines(f'{t},{v}\n' for t, v in history)
        out = subprocess.run([BIN, 'forecast', '--input', tmp, '--horizon', str(week)] + ARGS,
                             capture_output=True, text=True, check=True).stdout
        rows_out = list(csv.DictReader(out.splitlines()))
        forecast = [float(r['yhat']) for r in rows_out]
        inside.append(sum(float(r['yhat_lower']) <= a <= float(r['yhat_upper'])
                          for r, a in zip(rows_out, actual)) / week)
        naive = [v for _, v in history[-week:]]
        mae = lambda f: sum(abs(a - b) for a, b in zip(f, actual)) / week
        scores.append((rows[end][0], mae(forecast) / mae(naive)))
    geo = math.exp(sum(math.log(s) for _, s in scores) / len(scores))
    worst = sorted(scores, key=lambda s: -s[1])[:3]
    print(f'{name:20s} {len(scores)} windows of {WEEKS} weeks: rMAE geo {geo:.3f}, '
          f'95% coverage {sum(inside) / len(inside):.3f}; worst '
          + ', '.join(f'{t[:10]} {s:.2f}' for t, s in worst))
