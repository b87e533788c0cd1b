#!/usr/bin/env python3
"""Forecast accuracy over many hold-outs, not one.

Scores `viewcast forecast` with ../shared/eval/score_forecast.py (which judges the command from
outside) on K week-long hold-outs per evaluation set: the hold-out of ../shared/eval/README.md
and the K-1 weeks before it, each forecast from the data up to its start. One week is a noisy
verdict (a heat wave, a holiday); 3 sets x 8 weeks says whether a change helps in general.

Run from the project root after `cargo build --release`:

    python3 benches/rolling_holdouts.py [--weeks 8] [--daily | --other | --weather] [--args "--model mstl_ets"]

With `--other`, the sets are series no default was ever tuned on (NAB's, in ../shared/data/anomaly):
hourly ad-exchange cost per click (a weak daily season: day-ahead hold-outs, one ending on each of
its last WEEKS x 7 days, against the daily seasonal naive) and the half-hourly taxi series (its
last WEEKS weeks, with Thanksgiving, Christmas and the January blizzard).

With `--weather`, hourly air temperature of Seattle and San Francisco in 2010 (from the PyPI
package vega_datasets, whose data ship inside it: `pip install vega_datasets`), a daily season
and no weekly one: day-ahead hold-outs ending on each of the last WEEKS x 7 days, against the
daily seasonal naive ("same hour yesterday").

With `--daily`, each set is first summed to daily totals (complete days only) and scored on
7-day hold-outs ending on each of the WEEKS × 7 days up to the day of the README's hold-out:
daily data, whose only season is the week, is a different problem (`--daily --weeks 20`).

Prints per set: rMAE over all weeks (total MAE / total seasonal-naive MAE), its geometric mean
over weeks, the README's hold-out alone, the interval's coverage (95% unless --args sets --level) and the interval's mean width relative to the actuals; then the mean coverage over all
weeks. Standard library only.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
# (file, step-count of a week = horizon = naive season, last timestamp of the README's hold-out)
SETS = [
    ('taylor.csv', 336, None),
    ('elecdemand.csv', 336, None),
    ('nyc_taxi_hourly.csv', 168, '2015-01-18 23:00:00'),
]
# --other: (file in data/anomaly, horizon = naive season, hold-outs per week).
# exchange-3 is left out: its missing hours put more than 24 rows' worth of time in a day, and
# the scorer matches the forecast to the hold-out row by row.
OTHER = [
    ('exchange-2_cpc_results.csv', 24, 7),
    ('nyc_taxi.csv', 336, 1),
]


# --weather: (file in vega_datasets' data, horizon = naive season, hold-outs per week).
WEATHER = [
    ('seattle-temps.csv', 24, 7),
    ('sf-temps.csv', 24, 7),
]


def weather_csv(name):
    """vega_datasets' `name` (columns date and temp, dates as 2010/01/01 00:00[:00]) as a
    temporary timestamp,value CSV."""
    try:
        import vega_datasets
    except ImportError:
        sys.exit('--weather needs the PyPI package vega_datasets: pip install vega_datasets')
    src = os.path.join(os.path.dirname(vega_datasets.__file__), '_data', name)
    out = os.path.join(tempfile.mkdtemp(), name)
    with open(src) as f, open(out, 'w') as g:
        g.write('timestamp,value\n')
        for r in csv.DictReader(f):
            stamp = r['date'].replace('/', '-')
            g.write(f'{stamp}:00,{r["temp"]}\n' if stamp.count(':') == 1 else f'{stamp},{r["temp"]}\n')
    return out


def daily_totals(path, end):
    """Sums `path` by day into a temporary CSV of complete days; returns it, its stamps and
    the stamp of the day holding `end` (None: the last day)."""
    days = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            day = days.setdefault(r['timestamp'][:10], [0.0, 0])
            day[0] += float(r['value'])
            day[1] += 1
    full = max(n for _, n in days.values())
    kept = [(d, v) for d, (v, n) in days.items() if n == full]
    out = os.path.join(tempfile.mkdtemp(), os.path.basename(path))
    with open(out, 'w') as f:
        f.write('timestamp,value\n')
        f.writelines(f'{d} 00:00:00,{v}\n' for d, v in kept)
    return out, [f'{d} 00:00:00' for d, _ in kept], end and f'{end[:10]} 00:00:00'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--weeks', type=int, default=8)
    ap.add_argument('--args', default='', help='extra arguments for viewcast forecast')
    ap.add_argument('--daily', action='store_true', help='score daily totals, weeks of 7 days')
    ap.add_argument('--other', action='store_true', help='score NAB series no default was tuned on')
    ap.add_argument('--weather', action='store_true',
                    help='score hourly temperatures (PyPI vega_datasets), day-ahead')
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'viewcast'))
    a = ap.parse_args()
    scorer = os.path.join(SHARED, 'eval', 'score_forecast.py')
    all_cov = []
    # (file, horizon, end of the README's hold-out, hold-outs per week if not one per horizon)
    sets = ([(n, h, None, k) for n, h, k in WEATHER if a.weather]
            or [(n, h, None, k) for n, h, k in OTHER if a.other]
            or [s + (None,) for s in SETS])
    for name, h, end, per_week in sets:
        path = os.path.join(SHARED, 'data', 'anomaly' if a.other else 'forecast', name)
        if a.weather:
            path = weather_csv(name)
        if a.daily:
            path, stamps, end = daily_totals(path, end)
            h = 7
        else:
            with open(path) as f:
                stamps = [r['timestamp'] for r in csv.DictReader(f)]
        last = stamps.index(end) if end else len(stamps) - 1
        # Daily: a hold-out week ends on every day (which weekday a week starts on changes
        # the verdict as much as a model does), after at least four weeks to learn from.
        stride, least = (1, 28) if a.daily else (h, 2 * h)
        count = a.weeks * per_week if per_week else a.weeks * h // stride
        rmae, cov, width, mae, naive, skipped = [], [], [], 0.0, 0.0, 0
        for k in range(count):
            if last - k * stride - h < least:
                break
            cmd = [sys.executable, scorer, '--csv', path, '--horizon', str(h), '--season', str(h),
                   '--end', stamps[last - k * stride].replace(' ', 'T'),
                   '--cmd', f'{a.bin} forecast --input {{input}} --horizon {{h}} {a.args}']
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0 and 'have no forecast row' in out.stderr:
                skipped += 1  # missing rows inside the hold-out: more time than steps
                continue
            out.check_returncode()
            d = json.loads(out.stdout.strip().splitlines()[-1])
            rmae.append(d['rmae'])
            cov.append(d['coverage'])
            width.append(d['width'])
            mae += d['mae']
            naive += d['mae'] / d['rmae']
        all_cov += cov
        geo = math.exp(sum(math.log(x) for x in rmae) / len(rmae))
        print(f'{name:20s} rMAE {mae / naive:.3f} (geometric {geo:.3f}, hold-out {rmae[0]:.3f})'
              f'  coverage {sum(cov) / len(cov):.3f} (hold-out {cov[0]:.3f})'
              f' width {sum(width) / len(width):.3f}', end='')
        if a.daily or a.other or a.weather:
            print(f'  ({len(rmae)} hold-outs' + (f', {skipped} with missing rows left out)' if skipped else ')'))
            continue
        print('  by week: ' + ' '.join(f'{x:.2f}' for x in rmae))
        print(f'{"":20s} coverage by week: ' + ' '.join(f'{x:.2f}' for x in cov))
    # The interval's level: viewcast's default unless --args sets one.
    words = a.args.split()
    level = words[words.index('--level') + 1] if '--level' in words[:-1] else '95'
    print(f'mean {level}% coverage over all {len(all_cov)} hold-outs: {sum(all_cov) / len(all_cov):.3f}')


if __name__ == '__main__':
    main()
