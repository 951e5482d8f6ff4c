/* The encoded LMMSE bases of base_demosaic.py ("lmmse", "lmmse-ri") as one native pass over a
 * window, for the OpenVINO engine: the same maths as base_demosaic.lmmse_demosaic (which stays
 * the definition, run by numpy, TensorFlow and OpenVINO and checked against this in the tests),
 * with box filters as running sums in double precision and each map computed once at full
 * resolution. As an OpenVINO graph the base was ~100 small convolutions over 4-channel maps,
 * memory-bound and 40 % of the default network's time (docs/benchmarks.md).
 *
 * base(x, out, h, w, residual): x is the packed RGGB window (h, w, 4) float32, linear (the sRGB
 * curve is applied here, as curve_encode); out is (h, w, 12) float32, colour c at site s in
 * channel 4c+s, encoded: what the graph's base node holds. Zero padding at the window's edges,
 * as the graph's convolutions. The GIL is released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define DENORMALS_ON(saved) do { saved = _mm_getcsr(); _mm_setcsr(saved & ~0x8040u); } while (0)
#define DENORMALS_RESTORE(saved) _mm_setcsr(saved)
#else
#define DENORMALS_ON(saved) (void)(saved)
#define DENORMALS_RESTORE(saved) (void)(saved)
#endif
#include <stdlib.h>
#include <string.h>

#define SRGB_BREAK 0.0031308
#define SRGB_SLOPE 12.92
#define SRGB_GAMMA 2.4
#define SRGB_OFFSET 0.055
#define TINY 1e-6f
#define GRADIENT_FLOOR 1e-3f
#define LMMSE_WINDOW 9
#define RESIDUAL_WINDOW 7
#define RESIDUAL_EPS 1e-5f

typedef struct { int H, W; } Shape;

/* The loops below vectorise; on x86-64 the whole base (microisp_native_base, every call inlined into it) is
 * also built for AVX2, and the CPU picks its version when the module loads (GCC's function
 * multi-versioning). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif
#define N(s) ((size_t)(s).H * (s).W)

/* Maps come from a per-thread pool of frame-sized buffers, kept between calls: a window's maps
 * are the same size every call, and fresh pages cost more than the arithmetic (page faults). */
#define POOL 48
static __thread float *pool[POOL];
static __thread int pooled;
static __thread size_t pool_size;

static float *map(Shape s) {
    if (pool_size != N(s)) {
        while (pooled) free(pool[--pooled]);
        pool_size = N(s);
    }
    return pooled ? pool[--pooled] : (float *)malloc(N(s) * sizeof(float));
}

static void release(float *m) {
    if (pooled < POOL) pool[pooled++] = m; else free(m);
}

/* out[y][x] = sum_j k[j] t[y][x + j - r], zero outside the map (correlation, as NumpyOps.conv).
 * Tap by tap over the row, so that the inner loops vectorise. */
static void conv_row(Shape s, const float *t, const float *k, int n, float *out) {
    int r = n / 2;
    for (int y = 0; y < s.H; y++) {
        const float *row = t + (size_t)y * s.W;
        float *o = out + (size_t)y * s.W;
        for (int x = 0; x < s.W; x++) o[x] = 0.0f;
        for (int j = 0; j < n; j++) {
            int shift = j - r, x0 = shift < 0 ? -shift : 0, x1 = shift > 0 ? s.W - shift : s.W;
            float kj = k[j];
            if (kj == 0.0f) continue;
            const float *src = row + shift;
            for (int x = x0; x < x1; x++) o[x] += kj * src[x];
        }
    }
}

static void conv_col(Shape s, const float *t, const float *k, int n, float *out) {
    int r = n / 2;
    memset(out, 0, N(s) * sizeof(float));
    for (int y = 0; y < s.H; y++) {
        float *o = out + (size_t)y * s.W;
        for (int j = 0; j < n; j++) {
            int yy = y + j - r;
            if (yy < 0 || yy >= s.H || k[j] == 0.0f) continue;
            const float *row = t + (size_t)yy * s.W;
            float kj = k[j];
            for (int x = 0; x < s.W; x++) o[x] += kj * row[x];
        }
    }
}

/* box sums of (2ry+1) x (2rx+1) windows (zero outside): a row pass, then a column pass */
static void box(Shape s, const float *t, int ry, int rx, float *out) {
    float *tmp = map(s);
    for (int y = 0; y < s.H; y++) {
        const float *row = t + (size_t)y * s.W;
        float *o = tmp + (size_t)y * s.W;
        for (int x = 0; x < s.W; x++) o[x] = row[x];
        for (int shift = -rx; shift <= rx; shift++) {
            if (shift == 0) continue;
            int x0 = shift < 0 ? -shift : 0, x1 = shift > 0 ? s.W - shift : s.W;
            const float *src = row + shift;
            for (int x = x0; x < x1; x++) o[x] += src[x];
        }
    }
    for (int y = 0; y < s.H; y++) {
        float *o = out + (size_t)y * s.W;
        int y0 = y - ry < 0 ? 0 : y - ry, y1 = y + ry >= s.H ? s.H - 1 : y + ry;
        const float *first = tmp + (size_t)y0 * s.W;
        for (int x = 0; x < s.W; x++) o[x] = first[x];
        for (int yy = y0 + 1; yy <= y1; yy++) {
            const float *a = tmp + (size_t)yy * s.W;
            for (int x = 0; x < s.W; x++) o[x] += a[x];
        }
    }
    release(tmp);
}

/* out = 3x3 correlation of t with k (zero outside) */
static void conv3x3(Shape s, const float *t, const float k[3][3], float *out) {
    for (int y = 0; y < s.H; y++) {
        float *o = out + (size_t)y * s.W;
        for (int x = 0; x < s.W; x++) {
            int inner = y > 0 && y < s.H - 1 && x > 0 && x < s.W - 1;
            float a = 0.0f;
            if (inner) {
                const float *c = t + (size_t)y * s.W + x;
                for (; x < s.W - 1; x++, c++) {
                    a = k[0][0] * c[-s.W - 1] + k[0][1] * c[-s.W] + k[0][2] * c[-s.W + 1]
                      + k[1][0] * c[-1] + k[1][1] * c[0] + k[1][2] * c[1]
                      + k[2][0] * c[s.W - 1] + k[2][1] * c[s.W] + k[2][2] * c[s.W + 1];
                    o[x] = a;
                }
                x--;
                continue;
            }
            for (int i = -1; i <= 1; i++)
                for (int j = -1; j <= 1; j++) {
                    int yy = y + i, xx = x + j;
                    if (yy >= 0 && yy < s.H && xx >= 0 && xx < s.W) a += k[i + 1][j + 1] * t[(size_t)yy * s.W + xx];
                }
            o[x] = a;
        }
    }
}

static inline int site(int y, int x) { return 2 * (y & 1) + (x & 1); }
static inline float is_green(int y, int x) { int q = site(y, x); return (q == 1 || q == 2) ? 1.0f : 0.0f; }

/* one direction of Zhang and Wu's directional LMMSE green: estimate d and its error e */
static void lmmse_line(Shape s, const float *m, int vertical, float *d, float *e) {
    static const float half[5] = {-0.25f, 0.5f, 0.5f, 0.5f, -0.25f};
    float smooth[9], mean[LMMSE_WINDOW];
    double total = 0.0, g[9];
    for (int i = 0; i < 9; i++) { double r = i - 4; g[i] = exp(-r * r / (2 * 2.0 * 2.0)); total += g[i]; }
    for (int i = 0; i < 9; i++) smooth[i] = (float)(g[i] / total);
    for (int i = 0; i < LMMSE_WINDOW; i++) mean[i] = (float)(1.0 / LMMSE_WINDOW);
    void (*conv)(Shape, const float *, const float *, int, float *) = vertical ? conv_col : conv_row;
    size_t n = N(s);
    float *diff = map(s), *sm = map(s), *mu = map(s), *tmp = map(s);
    conv(s, m, half, 5, diff);
    for (int y = 0; y < s.H; y++)
        for (int x = 0; x < s.W; x++) {
            size_t p = (size_t)y * s.W + x;
            diff[p] = (diff[p] - m[p]) * (1.0f - is_green(y, x) * 2.0f);
        }
    conv(s, diff, smooth, 9, sm);
    conv(s, sm, mean, LMMSE_WINDOW, mu);
    /* spread: sum over the window's other samples q of (s_q - s_p)^2, s_q = 0 outside */
    int step = vertical ? s.W : 1, len = vertical ? s.H : s.W, half_w = LMMSE_WINDOW / 2;
    for (int y = 0; y < s.H; y++)
        for (int x = 0; x < s.W; x++) {
            size_t p = (size_t)y * s.W + x;
            int at = vertical ? y : x;
            float sp = sm[p], spread = 0.0f;
            for (int q = -half_w; q <= half_w; q++) {
                if (q == 0) continue;
                float sq = (at + q >= 0 && at + q < len) ? sm[(ptrdiff_t)p + (ptrdiff_t)q * step] : 0.0f;
                spread += (sq - sp) * (sq - sp);
            }
            float offset = sp - mu[p];
            float signal = spread * (1.0f / LMMSE_WINDOW) - offset * offset;
            d[p] = (signal > 0.0f ? signal : 0.0f) + TINY;  /* signal, for now */
            tmp[p] = (diff[p] - sp) * (diff[p] - sp);
        }
    conv(s, tmp, mean, LMMSE_WINDOW, e);  /* noise, for now */
    for (size_t p = 0; p < n; p++) {
        float signal = d[p], noise = e[p] + TINY;
        d[p] = mu[p] + signal / (signal + noise) * (diff[p] - mu[p]);
        e[p] = signal * noise / (signal + noise);
    }
    release(diff); release(sm); release(mu); release(tmp);
}

/* horizontal / vertical weights from gradients summed over a 3x5 (5x3) window */
static void line_weight(Shape s, const float *m, int vertical, float *w) {
    float *grad = map(s);
    for (int y = 0; y < s.H; y++)
        for (int x = 0; x < s.W; x++) {
            int at = vertical ? y : x, len = vertical ? s.H : s.W;
            size_t p = (size_t)y * s.W + x, step = vertical ? (size_t)s.W : 1;
#define AT(o) ((at + (o) >= 0 && at + (o) < len) ? m[(ptrdiff_t)p + (ptrdiff_t)(o) * (ptrdiff_t)step] : 0.0f)
            grad[p] = fabsf(AT(-1) - AT(1)) + fabsf(-AT(-2) + 2.0f * m[p] - AT(2));
#undef AT
        }
    box(s, grad, vertical ? 2 : 1, vertical ? 1 : 2, w);
    for (size_t p = 0; p < N(s); p++) { float t = w[p] + GRADIENT_FLOOR; w[p] = 1.0f / (t * t); }
    release(grad);
}

/* value of map t at (y + dy, x + dx), 0 outside */
static inline float px(Shape s, const float *t, int y, int x) {
    return (y < 0 || y >= s.H || x < 0 || x >= s.W) ? 0.0f : t[(size_t)y * s.W + x];
}

/* base_demosaic._fit: target ~ a * guide + b in every 7x7 window over the samples of `own` */
static void fit(Shape s, const float *target, const float *guide, int own, const float *count,
                const float *cover, float *out) {
    size_t n = N(s);
    int r = RESIDUAL_WINDOW / 2;
    float *gs = map(s), *cs = map(s), *ggs = map(s), *gcs = map(s);
    for (int y = 0; y < s.H; y++)
        for (int x = 0; x < s.W; x++) {
            size_t p = (size_t)y * s.W + x;
            int q = site(y, x);
            float sample = own == 1 ? (q == 1 || q == 2) : (q == own);
            float g = guide[p] - 0.5f, c = target[p] - 0.5f;
            gs[p] = g * sample; cs[p] = c * sample; ggs[p] = g * g * sample; gcs[p] = g * c * sample;
        }
    box(s, gs, r, r, gs); box(s, cs, r, r, cs); box(s, ggs, r, r, ggs); box(s, gcs, r, r, gcs);
    for (size_t p = 0; p < n; p++) {
        float mg = gs[p] / count[p], mc = cs[p] / count[p];
        float var = ggs[p] / count[p] - mg * mg;
        if (var < 0.0f) var = 0.0f;
        float a = (gcs[p] / count[p] - mg * mc) / (var + RESIDUAL_EPS);
        gs[p] = a; cs[p] = mc - a * mg;
    }
    box(s, gs, r, r, gs); box(s, cs, r, r, cs);
    for (size_t p = 0; p < n; p++) out[p] = (gs[p] * (guide[p] - 0.5f) + cs[p]) / cover[p] + 0.5f;
    release(gs); release(cs); release(ggs); release(gcs);
}

/* red or blue (site `own`: 0 or 3): the fit plus its samples' residuals interpolated bilinearly */
static void red_blue(Shape s, const float *m, const float *guide, int own, const float *count,
                     const float *cover, float *out) {
    static const float bilinear[3][3] = {{0.25f, 0.5f, 0.25f}, {0.5f, 1.0f, 0.5f}, {0.25f, 0.5f, 0.25f}};
    float *f = map(s), *res = map(s);
    fit(s, m, guide, own, count, cover, f);
    for (int y = 0; y < s.H; y++)
        for (int x = 0; x < s.W; x++) {
            size_t p = (size_t)y * s.W + x;
            res[p] = site(y, x) == own ? m[p] - f[p] : 0.0f;
        }
    conv3x3(s, res, bilinear, out);
    for (size_t p = 0; p < N(s); p++) out[p] += f[p];
    release(f); release(res);
}

static void residual_colours(Shape s, const float *m, const float *g, const float *w_row,
                             const float *w_col, float *r, float *gr, float *b) {
    size_t n = N(s);
    int rad = RESIDUAL_WINDOW / 2;
    float *ones = map(s), *cover = map(s), *count_r = map(s), *count_b = map(s), *count_g = map(s);
    float *mask = map(s), *f = map(s), *res = map(s);
    for (size_t p = 0; p < n; p++) ones[p] = 1.0f;
    box(s, ones, rad, rad, cover);
    float *counts[3] = {count_r, count_g, count_b};
    int owns[3] = {0, 1, 3};
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++) {
                int q = site(y, x);
                mask[(size_t)y * s.W + x] = owns[c] == 1 ? (q == 1 || q == 2) : q == owns[c];
            }
        box(s, mask, rad, rad, counts[c]);
    }
    red_blue(s, m, g, 0, count_r, cover, r);
    red_blue(s, m, g, 3, count_b, cover, b);
    for (int y = 0; y < s.H; y++)
        for (int x = 0; x < s.W; x++) gr[(size_t)y * s.W + x] = g[(size_t)y * s.W + x] * is_green(y, x);
    const float *guides[2] = {r, b};
    int sites[2] = {0, 3};
    for (int c = 0; c < 2; c++) {
        fit(s, m, guides[c], 1, count_g, cover, f);
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++) {
                size_t p = (size_t)y * s.W + x;
                res[p] = (m[p] - f[p]) * is_green(y, x);
            }
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++) {
                size_t p = (size_t)y * s.W + x;
                if (site(y, x) != sites[c]) continue;
                float across_row = 0.5f * px(s, res, y, x - 1) + 0.5f * px(s, res, y, x + 1);
                float across_col = 0.5f * px(s, res, y - 1, x) + 0.5f * px(s, res, y + 1, x);
                float across = (across_row * w_row[p] + across_col * w_col[p]) / (w_row[p] + w_col[p]);
                gr[p] += f[p] + across;
            }
    }
    red_blue(s, m, gr, 0, count_r, cover, r);
    red_blue(s, m, gr, 3, count_b, cover, b);
    release(ones); release(cover); release(count_r); release(count_b); release(count_g); release(mask); release(f); release(res);
}

/* base_demosaic.lmmse_demosaic's colour-difference colours (base "lmmse") */
static void difference_colours(Shape s, const float *m, const float *g, const float *w_row,
                               const float *w_col, float *r, float *b) {
    static const float cross[3][3] = {{0, 1, 0}, {1, 1, 1}, {0, 1, 0}};
    float *d = map(s), *grad1 = map(s), *grad2 = map(s), *t1 = map(s), *t2 = map(s);
    float *outs[2] = {r, b};
    int owns[2] = {0, 3}, others[2] = {3, 0};
    for (int c = 0; c < 2; c++) {
        int own = owns[c], other = others[c];
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++) {
                size_t p = (size_t)y * s.W + x;
                d[p] = site(y, x) == own ? m[p] - g[p] : 0.0f;
            }
        /* the two diagonals: ends (y-1, x+1)/(y+1, x-1) and (y-1, x-1)/(y+1, x+1) */
        for (int k = 0; k < 2; k++) {
            int dx = k == 0 ? 1 : -1;  /* the end in the row above is at x + dx */
            float *gradk = k == 0 ? grad1 : grad2;
            for (int y = 0; y < s.H; y++)
                for (int x = 0; x < s.W; x++) {
                    float step = px(s, d, y - 1, x + dx) - px(s, d, y + 1, x - dx);
                    float centre = 2.0f * g[(size_t)y * s.W + x] - px(s, g, y - 1, x + dx) - px(s, g, y + 1, x - dx);
                    t1[(size_t)y * s.W + x] = (fabsf(step) + fabsf(centre)) * (site(y, x) == other);
                }
            for (int y = 0; y < s.H; y++)
                for (int x = 0; x < s.W; x++) {
                    float a = 0.0f;
                    for (int i = -1; i <= 1; i++)
                        for (int j = -1; j <= 1; j++)
                            if (cross[i + 1][j + 1] != 0.0f) a += px(s, t1, y + i, x + j);
                    a += GRADIENT_FLOOR;
                    gradk[(size_t)y * s.W + x] = 1.0f / (a * a);
                }
        }
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++) {
                size_t p = (size_t)y * s.W + x;
                float e1 = 0.5f * px(s, d, y - 1, x + 1) + 0.5f * px(s, d, y + 1, x - 1);
                float e2 = 0.5f * px(s, d, y - 1, x - 1) + 0.5f * px(s, d, y + 1, x + 1);
                t2[p] = d[p] + (e1 * grad1[p] + e2 * grad2[p]) / (grad1[p] + grad2[p]) * (site(y, x) == other);
            }
        float *out = outs[c];
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++) {
                size_t p = (size_t)y * s.W + x;
                float across = ((0.5f * px(s, t2, y, x - 1) + 0.5f * px(s, t2, y, x + 1)) * w_row[p]
                                + (0.5f * px(s, t2, y - 1, x) + 0.5f * px(s, t2, y + 1, x)) * w_col[p])
                               / (w_row[p] + w_col[p]);
                out[p] = g[p] + t2[p] + across * is_green(y, x);
            }
    }
    release(d); release(grad1); release(grad2); release(t1); release(t2);
}

static float encode(float t) {
    float lin = t * (float)SRGB_SLOPE;
    float high = powf(t > (float)SRGB_BREAK ? t : (float)SRGB_BREAK, (float)(1.0 / SRGB_GAMMA))
                 * (float)(1.0 + SRGB_OFFSET) - (float)SRGB_OFFSET;
    return lin < high ? lin : high;
}

HOT __attribute__((noinline, flatten)) void microisp_native_base(const float *x, float *out, int h, int w, int residual) {
    Shape s = {2 * h, 2 * w};
    float *m = map(s), *d_row = map(s), *e_row = map(s), *d_col = map(s), *e_col = map(s);
    float *g = map(s), *w_row = map(s), *w_col = map(s), *r = map(s), *b = map(s), *gr = map(s);
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int q = 0; q < 4; q++)
                m[(size_t)(2 * y + q / 2) * s.W + 2 * xx + q % 2] = encode(x[((size_t)y * w + xx) * 4 + q]);
    lmmse_line(s, m, 0, d_row, e_row);
    lmmse_line(s, m, 1, d_col, e_col);
    for (int y = 0; y < s.H; y++)
        for (int xx = 0; xx < s.W; xx++) {
            size_t p = (size_t)y * s.W + xx;
            g[p] = m[p] + (d_row[p] * e_col[p] + d_col[p] * e_row[p]) / (e_row[p] + e_col[p]) * (1.0f - is_green(y, xx));
        }
    line_weight(s, m, 0, w_row);
    line_weight(s, m, 1, w_col);
    const float *green = g;
    if (residual) {
        residual_colours(s, m, g, w_row, w_col, r, gr, b);
        green = gr;
    } else {
        difference_colours(s, m, g, w_row, w_col, r, b);
    }
    const float *colours[3] = {r, green, b};
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int c = 0; c < 3; c++)
                for (int q = 0; q < 4; q++)
                    out[((size_t)y * w + xx) * 12 + 4 * c + q] = colours[c][(size_t)(2 * y + q / 2) * s.W + 2 * xx + q % 2];
    release(m); release(d_row); release(e_row); release(d_col); release(e_col); release(g); release(w_row); release(w_col);
    release(r); release(b); release(gr);
}

static PyObject *py_base(PyObject *self, PyObject *args) {
    Py_buffer x, out;
    int h, w, residual;
    if (!PyArg_ParseTuple(args, "y*w*iip", &x, &out, &h, &w, &residual)) return NULL;
    if (h <= 0 || w <= 0 || x.len != (Py_ssize_t)h * w * 4 * 4 || out.len != (Py_ssize_t)h * w * 12 * 4) {
        PyBuffer_Release(&x); PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "base: x must be (h, w, 4) and out (h, w, 12) float32");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    /* IEEE denormals whatever the thread's mode: a library loaded with -ffast-math (or a runtime's
     * FTZ/DAZ) must not change the base, which would then differ between processes */
    unsigned int saved = 0;
    DENORMALS_ON(saved);
    microisp_native_base((const float *)x.buf, (float *)out.buf, h, w, residual);
    DENORMALS_RESTORE(saved);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&x); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"base", py_base, METH_VARARGS, "base(x, out, h, w, residual): the encoded LMMSE base of a packed window."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_base", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native_base(void) { return PyModule_Create(&module); }
