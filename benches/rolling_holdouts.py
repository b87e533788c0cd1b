#!/usr/bin/env python3
"""Forecast accuracy over many hold-outs, not one.

Scores `viewcast forecast` with ../shared/eval/score_forecast.py (which judges the command from
outside) on K week-long hold-outs per evaluation set: the hold-out of ../shared/eval/README.md
and the K-1 weeks before it, each forecast from the data up to its start. One week is a noisy
verdict (a heat wave, a holiday); 3 sets x 8 weeks says whether a change helps in general.

Run from the project root after `cargo build --release`:

    python3 benches/rolling_holdouts.py [--weeks 8] [--args "--model mstl_ets"]

Prints per set: rMAE over all weeks (total MAE / total seasonal-naive MAE), its geometric mean
over weeks, the README's hold-out alone, 95% coverage and the interval's mean width relative to the actuals; then the mean coverage over all
weeks. Standard library only.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
# (file, step-count of a week = horizon = naive season, last timestamp of the README's hold-out)
SETS = [
    ('taylor.csv', 336, None),
    ('elecdemand.csv', 336, None),
    ('nyc_taxi_hourly.csv', 168, '2015-01-18 23:00:00'),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--weeks', type=int, default=8)
    ap.add_argument('--args', default='', help='extra arguments for viewcast forecast')
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'viewcast'))
    a = ap.parse_args()
    scorer = os.path.join(SHARED, 'eval', 'score_forecast.py')
    all_cov = []
    for name, h, end in SETS:
        path = os.path.join(SHARED, 'data', 'forecast', name)
        with open(path) as f:
            stamps = [r['timestamp'] for r in csv.DictReader(f)]
        last = stamps.index(end) if end else len(stamps) - 1
        rmae, cov, width, mae, naive = [], [], [], 0.0, 0.0
        for k in range(a.weeks):
            if last - k * h - h < 0:
                break
            cmd = [sys.executable, scorer, '--csv', path, '--horizon', str(h), '--season', str(h),
                   '--end', stamps[last - k * h].replace(' ', 'T'),
                   '--cmd', f'{a.bin} forecast --input {{input}} --horizon {{h}} {a.args}']
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
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
              f' width {sum(width) / len(width):.3f}'
              f'  by week: ' + ' '.join(f'{x:.2f}' for x in rmae))
        print(f'{"":20s} coverage by week: ' + ' '.join(f'{x:.2f}' for x in cov))
    print(f'mean 95% coverage over all {len(all_cov)} weeks: {sum(all_cov) / len(all_cov):.3f}')


if __name__ == '__main__':
    main()
