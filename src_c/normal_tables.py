"""Writes src_c/csvi_normal_tables.h, the tables of csvi's standard-normal
ziggurat (src_c/normal_fill.c), derived here from the ziggurat's defining
equations in 40-digit decimal arithmetic (stdlib only) and rounded once, so
the C tables do not depend on any libm.

Marsaglia & Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) with N = 256
layers under f(x) = exp(-x^2 / 2): layer 0 is the base strip [0, r] x
[0, f(r)] plus the tail beyond r; layer i >= 1 is the box [0, x_i] x
[f(x_i), f(x_(i-1))], x_(N-1) = r > ... > x_1 > x_0 = 0.  Every layer has
the area v = r f(r) + int_r^inf f, so x_(i-1) = f^-1(v / x_i + f(x_i)), and
r is the root that makes that recursion end at x_0 = 0.  With a draw's
52-bit integer j (x = j w[i]):
  w[i] = x_i / 2^52 (w[0] = (v / f(r)) / 2^52, the base strip's width),
  k[i] = floor(2^52 x_(i-1) / x_i) (k[0] = floor(2^52 r f(r) / v), k[1] = 0):
         j < k[i] means x lies inside the layer below the curve,
  f[i] = f(x_i) (f[0] = 1): a wedge's heights.

Run `python src_c/normal_tables.py` to rewrite the header (`--check`: exit
1 if it differs); tests/test_normal_fill.py checks that the checked-in
header is this output.
"""
import decimal
import functools
import os
import sys
from decimal import Decimal

N = 256
PRECISION = 40
HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csvi_normal_tables.h")


@functools.lru_cache(maxsize=None)
def pi():
    """pi by Machin's formula: 16 atan(1/5) - 4 atan(1/239); once, in
    header_text's context."""
    def atan_inv(n):
        term = total = Decimal(1) / n
        k, sign, n2 = 1, -1, n * n
        while True:
            term /= n2
            step = term / (2 * k + 1)
            if step == 0 or abs(step) < Decimal(10) ** -(PRECISION + 5):
                return total
            total += sign * step
            sign, k = -sign, k + 1
    return 16 * atan_inv(5) - 4 * atan_inv(239)


def f(x):
    return (-x * x / 2).exp()


def tail(r):
    """int_r^inf exp(-t^2 / 2) dt = sqrt(pi / 2) (1 - erf(r / sqrt 2)), erf by
    its all-positive series erf(z) = 2/sqrt(pi) e^(-z^2) sum 2^n z^(2n+1) /
    (1 3 ... (2n+1)) (no cancellation inside the sum)."""
    z = r / Decimal(2).sqrt()
    term = total = z
    n = 0
    while term > Decimal(10) ** -(PRECISION + 5):
        n += 1
        term = term * 2 * z * z / (2 * n + 1)
        total += term
    erf = 2 / pi().sqrt() * (-z * z).exp() * total
    return (pi() / 2).sqrt() * (1 - erf)


def layers(r):
    """(v, [x_1 .. x_(N-1)], residual): residual = v / x_1 + f(x_1) - 1, zero
    at the true r; None as residual when the recursion leaves f's range
    (r too small)."""
    v = r * f(r) + tail(r)
    xs = [r]
    for _ in range(N - 2):
        y = v / xs[-1] + f(xs[-1])
        if y >= 1:
            return v, xs, None
        xs.append((-2 * y.ln()).sqrt())
    xs.reverse()
    return v, xs, v / xs[0] + f(xs[0]) - 1


def solve_r():
    """The root of the residual in r: bisection while the recursion leaves
    f's range at the lower end (too small an r leaves too much area per
    layer), then the Illinois method (regula falsi that halves a stale end's
    weight) to full precision."""
    lo, hi = Decimal("3.5"), Decimal("3.8")
    f_lo, f_hi = layers(lo)[2], layers(hi)[2]
    assert f_hi < 0
    while f_lo is None:
        mid = (lo + hi) / 2
        f_mid = layers(mid)[2]
        if f_mid is None or f_mid > 0:
            lo, f_lo = mid, f_mid
        else:
            hi, f_hi = mid, f_mid
    side = 0
    for _ in range(200):  # converges in ~20; rounding noise may stall it before the width
        if hi - lo <= Decimal(10) ** -(PRECISION - 5):
            break
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        f_mid = layers(mid)[2]
        if f_mid == 0:
            return mid
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
            f_hi = f_hi / 2 if side == -1 else f_hi
            side = -1
        else:
            hi, f_hi = mid, f_mid
            f_lo = f_lo / 2 if side == 1 else f_lo
            side = 1
    return (lo + hi) / 2


def tables():
    """(r, v, k, w, fx): k as ints, the rest as Decimals (unrounded)."""
    r = solve_r()
    v, xs, _ = layers(r)
    x = [Decimal(0)] + xs  # x[0] = 0 .. x[N-1] = r
    m = Decimal(2) ** 52
    q = v / f(r)
    k = [int(m * r / q)] + [int(m * x[i - 1] / x[i]) for i in range(1, N)]
    w = [q / m] + [x[i] / m for i in range(1, N)]
    fx = [Decimal(1)] + [f(x[i]) for i in range(1, N)]
    return r, v, k, w, fx


def to_double(d):
    """The double nearest to a Decimal, as a C hex literal (exact)."""
    return float(d).hex()


def header_text():
    """The header; computed in a local decimal context, so that importing
    and calling this (the test does) changes no global state."""
    with decimal.localcontext() as context:
        context.prec = PRECISION
        r, v, k, w, fx = tables()
        inv_r = 1 / r

    def rows(items, per_line):
        return ",\n".join("    " + ", ".join(items[i:i + per_line])
                          for i in range(0, len(items), per_line))

    return (
        "/* Generated by src_c/normal_tables.py (the derivation is there); do not edit.\n"
        " * The ziggurat of exp(-x^2/2) with 256 layers, for src_c/normal_fill.c. */\n"
        "#ifndef CSVI_NORMAL_TABLES_H\n#define CSVI_NORMAL_TABLES_H\n\n"
        "#include <stdint.h>\n\n"
        f"/* r = {r:.30f}, v = {v:.30e} */\n"
        f"#define CSVI_ZIG_R {to_double(r)}\n"
        f"#define CSVI_ZIG_INV_R {to_double(inv_r)}\n\n"
        "static const uint64_t csvi_zig_k[256] = {\n"
        + rows([f"UINT64_C({x})" for x in k], 3) + "};\n\n"
        "static const double csvi_zig_w[256] = {\n"
        + rows([to_double(x) for x in w], 3) + "};\n\n"
        "static const double csvi_zig_f[256] = {\n"
        + rows([to_double(x) for x in fx], 3) + "};\n\n"
        "#endif\n"
    )


if __name__ == "__main__":
    text = header_text()
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(0 if open(HEADER).read() == text else 1)
    with open(HEADER, "w") as out:
        out.write(text)
