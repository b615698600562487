/*
 * ev_schema_dump - prints the event schema table, one fact per line, for the
 * asyncapi test (tests/unit/check_asyncapi.py), which derives the same lines
 * from docs/asyncapi.yaml and compares:
 *
 *   <topic> <type> envelope|raw
 *   <topic> <type> key=<field>
 *   <topic> <type> <field>:<jsontype>            (required field)
 *   <topic> <type> <field>?:<jsontype>           (optional field)
 *   <topic> <type> <field>[].<sub>:<jsontype>    (field of each array item)
 */
#include <stdio.h>

#include "envelope.h"

static void dump_fields(const ev_schema_t *s, const char *prefix, const ev_field_t *fields)
{
    for (const ev_field_t *f = fields; f->name; f++) {
        printf("%s %s %s%s%s:%s\n", s->topic, s->type, prefix, f->name, f->required ? "" : "?",
               ev_jtype_name(f->type));
        if (f->items) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s[].", prefix, f->name);
            dump_fields(s, sub, f->items);
        }
    }
}

int main(void)
{
    size_t n;
    const ev_schema_t *t = ev_schemas(&n);
    for (size_t i = 0; i < n; i++) {
        printf("%s %s %s\n", t[i].topic, t[i].type, t[i].envelope ? "envelope" : "raw");
        printf("%s %s key=%s\n", t[i].topic, t[i].type, t[i].key);
        dump_fields(&t[i], "", t[i].fields);
    }
    return 0;
}
