"""An Eloverblik export's rows checked per metering point into its interval energy at
UTC: Danish local times resolved (the repeated autumn hour, the skipped spring hour), the
resolution found, each point's series checked by utility.point_series."""

from __future__ import annotations

import itertools

import numpy as np

from collector.imports.eloverblik_lines import Parsed
from collector.imports.utility import Ints, PointSeries, fail, point_series
from collector.imports.wallclock import offsets
from sparwatt.timeutil import HOUR_MS, QUARTER_MS

TZ = "Europe/Copenhagen"  # DataHub's local time


def points(name: str, parsed: Parsed) -> list[PointSeries]:
    """The points of parsed rows, by code; raises ConfigError naming the file (`name`),
    line and reason of the first fault. Points without a value are left out."""
    cols = parsed.cols
    code: Ints = cols["code"]
    if not len(code):
        return []
    if (np.diff(code) < 0).any():  # points interleaved: group them
        order = np.argsort(code, kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        code = cols["code"]
    fra: Ints = cols["fra"]
    clock = offsets(int(fra.min()), int(fra.max()), TZ)
    cut = np.flatnonzero(np.diff(code)) + 1
    bounds = list(itertools.pairwise([0, *cut.tolist(), len(code)]))
    # one point at a time, so the arrays stay small; every time is checked before any
    # point's series, so the fault named first is the one a whole-file check finds
    utcs = []
    for lo, hi in bounds:
        local = fra[lo:hi]
        # the autumn hour comes twice: a time no later than one already seen for the same
        # point is the second one (the file runs forward in time within a point)
        second = np.zeros(hi - lo, dtype=bool)
        second[1:] = local[1:] <= np.maximum.accumulate(local[:-1])
        utc, skipped = clock.to_utc(local, second)
        if skipped.any():
            i = lo + int(np.flatnonzero(skipped)[0])
            raise fail(name, int(cols["line"][i]), "Fra_dato falls in the hour the clocks skip "
                       "in spring; it does not exist in Danish time")  # fmt: skip
        utcs.append(utc)
    out = []
    for (lo, hi), utc in zip(bounds, utcs, strict=True):
        ordered = len(utc) < 2 or bool((np.diff(utc) > 0).all())
        steps = np.diff(utc if ordered else np.sort(utc))
        quarters = int((steps == QUARTER_MS).sum())
        hours = int((steps == HOUR_MS).sum())
        resolution = QUARTER_MS if quarters >= hours else HOUR_MS
        if not quarters and not hours:
            resolution = parsed.lengths[int(code[lo])]
        # every row is an interval of that length (an hour more or less where the clocks
        # change in between): an hour's energy must not pass for a quarter's
        span, length = cols["span"][lo:hi], resolution // 60_000
        odd = np.flatnonzero((span != length) & (span != length + 60) & (span != length - 60))
        if len(odd) and resolution in (QUARTER_MS, HOUR_MS):
            i = lo + int(odd[0])
            raise fail(name, int(cols["line"][i]), f"metering point {parsed.gsrns[int(code[lo])]}: "
                       f"Til_dato makes a {int(cols['span'][i])}-minute interval among "
                       f"{length}-minute ones; a metering point has one resolution")  # fmt: skip
        kwh = cols["kwh"][lo:hi]
        has = ~np.isnan(kwh)
        # slices where every row has a value: the series shares the columns' memory
        keep = slice(None) if has.all() else np.flatnonzero(has)
        if not has.any():
            continue
        out.append(
            point_series(
                name, parsed.gsrns[int(code[lo])], utc[keep], kwh[keep],
                cols["est"][lo:hi][keep], cols["line"][lo:hi][keep], resolution,
            )
        )  # fmt: skip
    return out
