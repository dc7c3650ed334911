"""The error function, which NumPy lacks: ``erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt``.

float64: piecewise rational approximations on ``a = |x|`` with the published coefficients of
Sun's fdlibm ``s_erf.c``, then ``erf(-x) = -erf(x)``:

    a in [0, 0.84375)     erf = a + a * P(a^2) / Q(a^2)
    a in [0.84375, 1.25)  erf = c + P(a - 1) / Q(a - 1),  c = 0.84506291151 rounded to float32
    a in [1.25, 6)        erf = 1 - exp(-a^2 - 0.5625 + R(1/a^2) / S(1/a^2)) / a,
                          two coefficient sets for R/S, split at a = 1/0.35
    a >= 6                erf = 1 to working precision

In the tail, ``exp(-a^2)`` is evaluated as ``exp(-z^2 - 0.5625) * exp((z - a)(z + a) + R/S)`` where
``z`` is ``a`` with the low half of its significand cleared, so ``z^2`` is exact and the rounding
error of ``a^2`` (amplified by ``exp``) never enters.

Measured error: at most 1 ulp, against ``math.erf`` and against the correctly rounded value
(mpmath), over ~7 million points from subnormals to beyond 6.

float32: three pieces with plain polynomials sized for 24 bits rather than 53 (fitted by least
squares on Chebyshev nodes, refined towards minimax, coefficients rounded to float32), computed
in float32 throughout, no float64 temporaries:

    a in [0, 0.75)        erf = a + a * p(a^2)                       degree 6
    a in [0.75, 1.25)     erf = c + q(a - 1)                         degree 8, c as above
    a >= 1.25             erf = 1 - exp(-a^2) * w * r(w),  w = 1/a   degree 6
                          (exp(-a^2) needs no splitting: erfc <= 0.08 scales its error down)

Measured error: at most 0.85 ulp over every fifth float32 in [0, 4.5] and over the test grid.
``tests/test_special.py`` asserts the 1 ulp bound for both dtypes.

Both paths run over blocks of ``_BLOCK`` elements, so that the temporaries of the dozens of
elementwise passes stay in the CPU cache.
"""

import numpy as np

# Coefficients of fdlibm s_erf.c, lowest degree first.
_ERX = 8.45062911510467529297e-01  # erf(1) rounded to float32
_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_QQ = (
    1.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_QA = (
    1.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_SA = (
    1.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_SB = (
    1.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)

# Per dtype: the unsigned integer of the same width, and the mask keeping the high half of the
# significand (z = a & mask has at most 21 (float64) or 12 (float32) significant bits).
_SPLIT = {
    np.dtype(np.float64): (np.uint64, np.uint64(0xFFFF_FFFF_0000_0000)),
    np.dtype(np.float32): (np.uint32, np.uint32(0xFFFF_F000)),
}
_SIGN_BIT = {np.dtype(np.float64): np.uint64(1 << 63), np.dtype(np.float32): np.uint32(1 << 31)}


def _poly(coeffs: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Horner's rule for ``sum_k coeffs[k] * t**k`` in the dtype of ``t`` (in place, one buffer)."""
    out = t * coeffs[-1]
    out += coeffs[-2]
    for c in reversed(coeffs[:-2]):
        out *= t
        out += c
    return out


def _erf_small(a: np.ndarray) -> np.ndarray:
    """erf on ``0 <= a < 0.84375``."""
    t = a * a
    return a + a * (_poly(_PP, t) / _poly(_QQ, t))


def _erf_near_one(a: np.ndarray) -> np.ndarray:
    """erf on ``0.84375 <= a < 1.25``."""
    s = a - 1
    return _ERX + _poly(_PA, s) / _poly(_QA, s)


def _erf_tail(a: np.ndarray, r: tuple[float, ...], s: tuple[float, ...]) -> np.ndarray:
    """erf on ``1.25 <= a < 6`` as ``1 - erfc(a)``, with ``R/S = log(a erfc(a)) + a^2 + 0.5625``."""
    t = 1 / (a * a)
    log_corr = _poly(r, t) / _poly(s, t)
    uint, mask = _SPLIT[a.dtype]
    z = (a.view(uint) & mask).view(a.dtype)
    erfc = np.exp(-z * z - 0.5625) * np.exp((z - a) * (z + a) + log_corr) / a
    return 1 - erfc


# (low, high, erf on low <= a < high); a >= 6 gives 1 to working precision.
_RANGES = (
    (0.0, 0.84375, _erf_small),
    (0.84375, 1.25, _erf_near_one),
    (1.25, 1 / 0.35, lambda a: _erf_tail(a, _RA, _SA)),
    (1 / 0.35, 6.0, lambda a: _erf_tail(a, _RB, _SB)),
)


# float32 coefficients, lowest degree first (see the module docstring).
_SPLIT32 = 0.75
_SMALL32 = (  # p: erf(a) / a - 1 in powers of a^2, a < 0.75
    0.12837916612625122, -0.37612637877464294, 0.1128377914428711, -0.02686478942632675,
    0.0052168467082083225, -0.0008357828482985497, 9.475775732425973e-05,
)
_NEAR32 = (  # q: erf(a) - c in powers of a - 1, 0.75 <= a < 1.25
    -0.0023621185682713985, 0.41510748863220215, -0.41510748863220215, 0.13836894929409027,
    0.06918489933013916, -0.06917224824428558, 0.004599760752171278, 0.014890985563397408,
    -0.004570213612169027,
)
_TAIL32 = (  # r: a exp(a^2) erfc(a) in powers of w = 1/a, a >= 1.25
    0.5617546439170837, 0.03136477991938591, -0.45267453789711, 0.4892789125442505,
    -0.2698836922645569, 0.07501912117004395, -0.007266312371939421,
)


def _erf32_abs(a: np.ndarray) -> np.ndarray:
    """erf(a) for float32 ``a >= 0`` (or nan), in float32."""
    # the small-argument formula everywhere (clamped, so that large a cannot overflow) ...
    s = np.minimum(a, np.float32(_SPLIT32))
    out = _poly(_SMALL32, s * s)
    out *= s
    out += s
    # ... then each of the other two formulas on its own elements only (nan compares false and
    # stays nan)
    near = np.flatnonzero((a >= _SPLIT32) & (a < 1.25))
    if near.size:
        erf_near = _poly(_NEAR32, a[near] - 1)
        erf_near += _ERX
        out[near] = erf_near
    tail = np.flatnonzero(a >= 1.25)
    if tail.size:
        at = a[tail]
        w = 1 / at  # a = inf gives w = 0 and erf = 1
        erfc = _poly(_TAIL32, w)
        erfc *= w
        erfc *= np.exp(-at * at)
        out[tail] = 1 - erfc
    return out


def _erf64_abs(a: np.ndarray) -> np.ndarray:
    """erf(a) for float64 ``a >= 0`` (or nan), with the fdlibm pieces."""
    out = np.where(a >= 6, 1, a)  # inf -> 1; nan stays nan; every finite a < 6 is overwritten
    for low, high, erf_range in _RANGES:
        idx = np.flatnonzero((a >= low) & (a < high))
        out[idx] = erf_range(a[idx])
    return out


# Elements per block: the few live temporaries of one block (256 KiB each in float32) stay in
# the CPU cache, which makes the elementwise passes about twice as fast as over a whole large
# array.
_BLOCK = 65536


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise.

    x: array of any shape. float32 is computed in float32, float64 in float64; any other dtype is
    converted to float64 first. Returns an array of the same shape and (floating) dtype.
    Accuracy: <= 1 ulp in float64, < 1 ulp in float32; erf(+-inf) = +-1, erf(nan) = nan,
    erf(-0.0) = -0.0.
    """
    x = np.asarray(x)
    if x.dtype not in _SPLIT:
        x = x.astype(np.float64)
    erf_abs = _erf32_abs if x.dtype == np.float32 else _erf64_abs
    flat = x.ravel()  # (N,)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        out[block] = erf_abs(np.abs(flat[block]))
    # erf(-x) = -erf(x): out >= 0 (or a nan made positive by abs), so setting its sign bit to
    # x's is copysign, in two integer passes instead of one much slower float one
    uint = _SPLIT[x.dtype][0]
    bits = out.view(uint)
    np.bitwise_or(bits, np.bitwise_and(flat.view(uint), _SIGN_BIT[x.dtype]), out=bits)
    return out.reshape(x.shape)
