/*
 * svc_metrics.c - a small Prometheus registry: families by name, series by
 * their rendered label text, exposition format 0.0.4.
 *
 * A series is identified by the text of its labels (a="x",b="y"), which is
 * also what /metrics prints, so an update is one map lookup per level and
 * rendering needs no formatting beyond the value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"
#include "sk_log.h"
#include "sk_map.h"
#include "svc_internal.h"

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct series_s {
    char *labels; /* rendered, without braces; "" for none */
    double value; /* counter, gauge; histogram: sum */
    uint64_t count;
    uint64_t bucket[NBUCKETS]; /* per bucket (not cumulative) */
} series_t;

typedef struct family_s {
    char *name, *help;
    int type; /* svc_metric_type_t; -1 until the first update (help set first) */
    int warned;
    sk_map_t index; /* labels -> series_t */
} family_t;

struct svc_metrics_s {
    sk_map_t families; /* name -> family_t */
};

svc_metrics_t *svc_metrics_new(void)
{
    svc_metrics_t *m = sk_calloc(1, sizeof *m);
    sk_map_init(&m->families);
    return m;
}

static void family_free(family_t *f)
{
    for (sk_map_entry_t *e = sk_map_next(&f->index, NULL); e; e = sk_map_next(&f->index, e)) {
        series_t *s = e->value;
        free(s->labels);
        free(s);
    }
    sk_map_release(&f->index);
    free(f->name);
    free(f->help);
    free(f);
}

void svc_metrics_free(svc_metrics_t *m)
{
    if (!m) return;
    for (sk_map_entry_t *e = sk_map_next(&m->families, NULL); e; e = sk_map_next(&m->families, e))
        family_free(e->value);
    sk_map_release(&m->families);
    free(m);
}

static int valid_name(const char *s, int colon_ok)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon_ok && c == ':') || (p > s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

static const char *type_name(svc_metric_type_t t)
{
    return t == SVC_METRIC_COUNTER ? "counter" : t == SVC_METRIC_GAUGE ? "gauge" : "histogram";
}

/* Renders name/value pairs as a="x",b="y"; -1 for a malformed label name. */
static int render_labels(const char *const *labels, sk_buf_t *b)
{
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!labels[i + 1] || !valid_name(labels[i], 0) || strcmp(labels[i], "le") == 0) return -1;
        sk_buf_addf(b, "%s%s=\"", i ? "," : "", labels[i]);
        for (const char *p = labels[i + 1]; *p; p++) {
            if (*p == '\\')
                sk_buf_adds(b, "\\\\");
            else if (*p == '"')
                sk_buf_adds(b, "\\\"");
            else if (*p == '\n')
                sk_buf_adds(b, "\\n");
            else
                sk_buf_addc(b, *p);
        }
        sk_buf_addc(b, '"');
    }
    return 0;
}

static family_t *family_get(svc_metrics_t *m, const char *name, int type)
{
    family_t *f = sk_map_get(&m->families, name, strlen(name));
    if (f) return f;
    if (!valid_name(name, 1)) {
        sk_error("metrics", "ignoring metric with a malformed name '%s'", name);
        return NULL;
    }
    f = sk_calloc(1, sizeof *f);
    f->name = sk_strdup(name);
    f->type = type;
    sk_map_init(&f->index);
    sk_map_put(&m->families, name, strlen(name), f);
    return f;
}

/* The series of name{labels} in a family of that type, created if needed;
 * NULL (logged once per family) for a bad name, labels or type. */
static series_t *series_get(svc_metrics_t *m, svc_metric_type_t type, const char *name,
                            const char *const *labels)
{
    family_t *f = family_get(m, name, (int)type);
    if (!f) return NULL;
    if (f->type < 0) f->type = (int)type;
    if (f->type != (int)type) {
        if (!f->warned)
            sk_error("metrics", "metric %s is a %s; ignoring its use as a %s", name,
                     type_name((svc_metric_type_t)f->type), type_name(type));
        f->warned = 1;
        return NULL;
    }
    sk_buf_t b;
    sk_buf_init(&b, 64);
    if (render_labels(labels, &b) < 0) {
        if (!f->warned) sk_error("metrics", "metric %s: malformed label list", name);
        f->warned = 1;
        sk_buf_release(&b);
        return NULL;
    }
    series_t *s = sk_map_get(&f->index, b.data, b.len);
    if (!s) {
        s = sk_calloc(1, sizeof *s);
        s->labels = sk_strdup(b.data);
        sk_map_put(&f->index, b.data, b.len, s);
    }
    sk_buf_release(&b);
    return s;
}

void svc_metrics_update(svc_metrics_t *m, svc_metric_type_t type, const char *name,
                        const char *const *labels, double v)
{
    series_t *s = series_get(m, type, name, labels);
    if (!s) return;
    switch (type) {
    case SVC_METRIC_COUNTER:
        if (v > 0) s->value += v;
        break;
    case SVC_METRIC_GAUGE:
        s->value = v;
        break;
    case SVC_METRIC_HISTOGRAM:
        s->value += v;
        s->count++;
        for (size_t i = 0; i < NBUCKETS; i++)
            if (v <= buckets[i]) {
                s->bucket[i]++;
                break;
            }
        break;
    }
}

void svc_metrics_counter_set(svc_metrics_t *m, const char *name, const char *const *labels,
                             double v)
{
    series_t *s = series_get(m, SVC_METRIC_COUNTER, name, labels);
    if (s) s->value = v;
}

void svc_metrics_set_help(svc_metrics_t *m, const char *name, const char *help)
{
    family_t *f = family_get(m, name, -1); /* the first update decides the type */
    if (!f) return;
    free(f->help);
    f->help = sk_strdup(help);
}

static int cmp_family(const void *a, const void *b)
{
    return strcmp((*(family_t *const *)a)->name, (*(family_t *const *)b)->name);
}

static int cmp_series(const void *a, const void *b)
{
    return strcmp((*(series_t *const *)a)->labels, (*(series_t *const *)b)->labels);
}

static void add_value(sk_buf_t *out, double v)
{
    sk_buf_addf(out, "%.15g\n", v);
}

static void add_sample(sk_buf_t *out, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    sk_buf_addf(out, "%s%s", name, suffix);
    if (*labels || extra)
        sk_buf_addf(out, "{%s%s%s}", labels, *labels && extra ? "," : "", extra ? extra : "");
    sk_buf_addc(out, ' ');
}

void svc_metrics_render(const svc_metrics_t *m, sk_buf_t *out)
{
    size_t nf = sk_map_count(&m->families), i = 0;
    family_t **fams = sk_calloc(nf ? nf : 1, sizeof *fams);
    for (sk_map_entry_t *e = sk_map_next(&m->families, NULL); e; e = sk_map_next(&m->families, e))
        fams[i++] = e->value;
    qsort(fams, nf, sizeof *fams, cmp_family);

    for (i = 0; i < nf; i++) {
        family_t *f = fams[i];
        size_t ns = sk_map_count(&f->index), j = 0;
        if (ns == 0 || f->type < 0) continue;
        if (f->help) {
            sk_buf_addf(out, "# HELP %s ", f->name);
            for (const char *p = f->help; *p; p++) {
                if (*p == '\\')
                    sk_buf_adds(out, "\\\\");
                else if (*p == '\n')
                    sk_buf_adds(out, "\\n");
                else
                    sk_buf_addc(out, *p);
            }
            sk_buf_addc(out, '\n');
        }
        sk_buf_addf(out, "# TYPE %s %s\n", f->name, type_name((svc_metric_type_t)f->type));
        series_t **ss = sk_calloc(ns, sizeof *ss);
        for (sk_map_entry_t *e = sk_map_next(&f->index, NULL); e; e = sk_map_next(&f->index, e))
            ss[j++] = e->value;
        qsort(ss, ns, sizeof *ss, cmp_series);
        for (j = 0; j < ns; j++) {
            series_t *s = ss[j];
            if (f->type != SVC_METRIC_HISTOGRAM) {
                add_sample(out, f->name, "", s->labels, NULL);
                add_value(out, s->value);
                continue;
            }
            uint64_t cum = 0;
            char le[48];
            for (size_t k = 0; k < NBUCKETS; k++) {
                cum += s->bucket[k];
                snprintf(le, sizeof le, "le=\"%g\"", buckets[k]);
                add_sample(out, f->name, "_bucket", s->labels, le);
                sk_buf_addf(out, "%llu\n", (unsigned long long)cum);
            }
            add_sample(out, f->name, "_bucket", s->labels, "le=\"+Inf\"");
            sk_buf_addf(out, "%llu\n", (unsigned long long)s->count);
            add_sample(out, f->name, "_sum", s->labels, NULL);
            add_value(out, s->value);
            add_sample(out, f->name, "_count", s->labels, NULL);
            sk_buf_addf(out, "%llu\n", (unsigned long long)s->count);
        }
        free(ss);
    }
    free(fams);
}
