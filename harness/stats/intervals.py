"""Student's t and Wilson's interval in plain Python, and the mean over seeds with its t-interval: the
leaderboard imports no scipy (a command typed often must start fast). tests/unit checks the quantile
against scipy's, and tests/unit/test_intervals_coverage.py that each interval covers what it claims."""
import functools
import math
import statistics
from collections.abc import Sequence


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, c, d = 1e-300, 1.0, 0.0
    f = 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        f = (f or 1.0) * c * d if i else c * d
        if i and abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_density(t: float, df: float) -> float:
    """Student's t density with df degrees of freedom."""
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_scale - (df + 1) / 2 * math.log1p(t * t / df))


@functools.cache  # a leaderboard or a coverage benchmark asks for the same quantiles again and again
def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p: Newton's method on the CDF from the normal quantile, kept inside a
    bracket that bisection narrows wherever a Newton step would leave it (a few CDF evaluations)."""
    low, high = -1e4, 1e4
    t = statistics.NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12))
    for _ in range(200):
        error = t_cdf(t, df) - p
        if error < 0:
            low = t
        else:
            high = t
        if abs(error) < 1e-14 or high - low < 1e-12 * max(1.0, abs(t)):
            break
        step = t - error / max(t_density(t, df), 1e-300)
        t = step if low < step < high else (low + high) / 2
    return t


def two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of a t statistic with df degrees of freedom."""
    return min(1.0, 2.0 * t_cdf(-abs(t), df))


def wilson_interval(proportion: float, effective_n: float, z: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion observed over effective_n independent trials, at quantile z:
    inside [0, 1] by construction, and of non-zero width at 0% and 100%."""
    shrink = 1.0 + z * z / effective_n
    centre = (proportion + z * z / (2 * effective_n)) / shrink
    half = z / shrink * math.sqrt(proportion * (1 - proportion) / effective_n + z * z / (4 * effective_n ** 2))
    return (0.0 if proportion <= 0 else max(0.0, centre - half), 1.0 if proportion >= 1 else min(1.0, centre + half))


def mean_interval(values: Sequence[float | None], confidence: float = 0.95,
                  bounds: tuple[float | None, float | None] | None = (0.0, 1.0)
                  ) -> tuple[float | None, float | None, float | None]:
    """The mean and the Student-t interval of the mean over seeds: (mean, low, high). None and NaN values
    are left out. With fewer than two values the interval is (None, None), never one of zero width: one
    seed says nothing of the spread. bounds clip the interval to a metric's possible range (an accuracy
    interval never leaves [0, 1]; None: unbounded on that side)."""
    data = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not data:
        return (None, None, None)
    mean = math.fsum(data) / len(data)
    if len(data) < 2:
        return (mean, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (len(data) - 1))
    half = t_quantile((1 + confidence) / 2, len(data) - 1) * sd / math.sqrt(len(data))
    low, high = mean - half, mean + half
    if bounds is not None:
        low = low if bounds[0] is None else max(bounds[0], low)
        high = high if bounds[1] is None else min(bounds[1], high)
    return (mean, low, high)
