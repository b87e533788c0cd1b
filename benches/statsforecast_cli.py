#!/usr/bin/env python3
"""The reference, statsforecast's MSTL with an AutoETS trend (as ../shared/eval/README.md
measures it), behind `viewcast forecast`'s command line, so the benchmark scripts score it the
same way (`--bin benches/statsforecast_cli.py`):

    benches/statsforecast_cli.py forecast --input CSV --horizon H [--period 24,168]

Needs `pip install statsforecast` (local benchmarks only; no test uses it). The series is put
on its most common time step (a missing step is interpolated, as statsforecast needs a
regular series), cut to the last 112 days (viewcast's default window), and given the
seasons the step implies (hourly: 24, 168; daily: 7) that two cycles of history hold.
"""
import argparse
import sys
import warnings

warnings.filterwarnings('ignore')
import pandas as pd  # noqa: E402
from statsforecast import StatsForecast  # noqa: E402
from statsforecast.models import MSTL, AutoETS  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('command', choices=['forecast'])
ap.add_argument('--input', required=True)
ap.add_argument('--horizon', type=int, required=True)
ap.add_argument('--period')
ap.add_argument('--window-days', type=float, default=112)
a, _ = ap.parse_known_args()
df = pd.read_csv(a.input)
df['ds'] = pd.to_datetime(df['timestamp'])
df = df.drop_duplicates('ds', keep='last').set_index('ds').sort_index()
step = df.index.to_series().diff().mode().iloc[0]
y = df['value'].astype(float).resample(step).mean()
y = y[y.index > y.index[-1] - pd.Timedelta(days=a.window_days)].interpolate(limit_direction='both')
if a.period:
    seasons = [int(p) for p in a.period.split(',')]
else:
    per_day = int(pd.Timedelta(days=1) / step)
    seasons = [per_day, 7 * per_day] if per_day > 1 else [7]
seasons = [s for s in seasons if len(y) >= 2 * s]
model = MSTL(season_length=seasons, trend_forecaster=AutoETS(model='ZZN'))
sf = StatsForecast(models=[model], freq=pd.tseries.frequencies.to_offset(step))
fc = sf.forecast(df=pd.DataFrame({'unique_id': 's', 'ds': y.index, 'y': y.values}),
                 h=a.horizon, level=[95])
print('timestamp,yhat,yhat_lower,yhat_upper')
for _, r in fc.iterrows():
    print(f"{r['ds']:%Y-%m-%d %H:%M:%S},{r['MSTL']},{r['MSTL-lo-95']},{r['MSTL-hi-95']}")
print(f'model: statsforecast_mstl, periods {seasons}', file=sys.stderr)
