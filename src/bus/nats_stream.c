/*
 * nats_stream.c - durable event streams on JetStream (libnats).
 *
 * The stream is created (or updated) with js_AddStream; publishing waits
 * for the stream's acknowledgement, with the message id as Nats-Msg-Id so
 * that the server stores a repeat within the duplicate window once.
 *
 * A reader is a durable pull consumer with no filter (it gets every subject
 * of the stream), explicit acknowledgements and a bounded number of
 * unacknowledged messages. It is created with js_AddConsumer when missing,
 * then bound with js_PullSubscribe (stream and consumer named, no subject),
 * which also lets several readers share one consumer. ms_consumer_next
 * fetches a batch and hands its messages out one at a time; a delivery
 * keeps the natsMsg alive for its acknowledgement.
 */
#include <stdlib.h>
#include <string.h>

#include "bus/nats_internal.h"
#include "bus/stream_internal.h"
#include "core/alloc.h"
#include "core/error.h"

#define NS_PER_MS 1000000LL

static ms_status js_fail(natsStatus ns, jsErrCode jerr, const char *what)
{
    if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr || ns == NATS_NO_RESPONDERS)
        return ms__err(MS_ERR_UNSUPPORTED,
                       "%s: the NATS server has no JetStream (start nats-server with -js, or "
                       "enable jetstream in its config)",
                       what);
    if (jerr == JSStreamNotFoundErr)
        return ms__err(MS_ERR_NOT_FOUND, "%s: no such stream (ms_stream_ensure creates it)", what);
    if (ns == NATS_ERR) {
        /* A JetStream API error: libnats keeps the server's description. */
        ms_status s = ms__nats_fail(ns, what);
        return ms__err_wrap(s == MS_ERR_INTERNAL ? MS_ERR_INTERNAL : s, "JetStream error %d",
                            (int)jerr);
    }
    return ms__nats_fail(ns, what);
}

static ms_status context_of(ms_bus *bus, jsCtx **out, const char *what)
{
    natsConnection *nc = ms__nats_connection(bus);
    natsStatus ns;

    if (nc == NULL)
        return ms__err(MS_ERR_STATE, "%s: not a NATS bus", what);
    ns = natsConnection_JetStream(out, nc, NULL);
    return ns == NATS_OK ? MS_OK : ms__nats_fail(ns, what);
}

ms_status ms__js_ensure(ms_bus *bus, const ms_stream_config *cfg)
{
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    char what[128];
    int n = 0;
    ms_status s;
    natsStatus ns;

    snprintf(what, sizeof what, "stream %s", cfg->name);
    if ((s = context_of(bus, &js, what)) != MS_OK)
        return s;
    while (cfg->subjects[n] != NULL)
        n++;
    jsStreamConfig_Init(&sc);
    sc.Name = cfg->name;
    sc.Subjects = (const char **)cfg->subjects;
    sc.SubjectsLen = n;
    sc.Storage = cfg->memory ? js_MemoryStorage : js_FileStorage;
    sc.MaxAge = cfg->max_age_ms * NS_PER_MS;
    sc.MaxMsgs = cfg->max_msgs > 0 ? cfg->max_msgs : -1;
    sc.Duplicates = cfg->duplicate_window_ms * NS_PER_MS;
    ns = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (ns != NATS_OK && jerr == JSStreamNameExistErr) {
        /* It exists with another config: bring it to this one. */
        jerr = 0;
        ns = js_UpdateStream(&si, js, &sc, NULL, &jerr);
    }
    s = ns == NATS_OK ? MS_OK : js_fail(ns, jerr, what);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return s;
}

ms_status ms__js_publish(ms_bus *bus, ms_message *msg, int timeout_ms, bool *duplicate)
{
    const char *subject = ms_message_subject(msg);
    jsCtx *js = NULL;
    jsPubAck *pa = NULL;
    jsPubOptions po;
    natsMsg *nm = NULL;
    jsErrCode jerr = 0;
    const void *data = ms_message_data(msg);
    size_t len = ms_message_len(msg);
    char what[300];
    ms_status s;
    natsStatus ns;

    snprintf(what, sizeof what, "stream publish on '%s'", subject);
    if ((s = context_of(bus, &js, what)) != MS_OK)
        return s;
    s = ms__nats_make_msg(subject, data, len, msg, &nm);
    if (s != MS_OK)
        goto cleanup;
    jsPubOptions_Init(&po);
    po.MsgId = ms_message_id(msg);
    po.MaxWait = timeout_ms;
    ns = js_PublishMsg(&pa, js, nm, &po, &jerr);
    if (ns == NATS_OK) {
        if (duplicate != NULL)
            *duplicate = pa->Duplicate;
    } else if (ns == NATS_NO_RESPONDERS) {
        /* Nothing answers on the subject: either no JetStream, or no stream
         * takes it. Core NATS cannot tell these apart here. */
        s = ms__err(MS_ERR_NOT_FOUND,
                    "%s: no stream stores this subject (or the server has no JetStream): "
                    "ms_stream_ensure creates the stream",
                    what);
    } else if (ns == NATS_TIMEOUT) {
        s = ms__err(MS_ERR_TIMEOUT, "%s: the stream did not acknowledge within %d ms", what,
                    timeout_ms);
    } else {
        s = js_fail(ns, jerr, what);
    }
cleanup:
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(nm);
    jsCtx_Destroy(js);
    return s;
}

ms_status ms__js_open(ms_consumer *c, const ms_stream_config *cfg)
{
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    jsConsumerConfig cc;
    jsSubOptions so;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    char what[160];
    ms_status s;
    natsStatus ns;

    snprintf(what, sizeof what, "consumer %s of stream %s", c->durable, cfg->name);
    if ((s = context_of(c->bus, &js, what)) != MS_OK)
        return s;
    c->js = js;
    jsConsumerConfig_Init(&cc);
    cc.Durable = c->durable;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)c->opts.ack_wait_ms * NS_PER_MS;
    cc.MaxDeliver = c->opts.max_deliver > 0 ? c->opts.max_deliver : -1;
    cc.MaxAckPending = c->opts.max_ack_pending;
    ns = js_AddConsumer(&ci, js, cfg->name, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    /* An existing consumer of that name is ours to bind to (the bind below
     * checks that its config agrees). */
    if (ns != NATS_OK && jerr != JSConsumerNameExistErr)
        return js_fail(ns, jerr, what);
    jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = cfg->name;
    so.Consumer = c->durable;
    ns = js_PullSubscribe(&sub, js, NULL, c->durable, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return js_fail(ns, jerr, what);
    c->sub = sub;
    c->fetched = ms__calloc(c->opts.batch, sizeof *c->fetched);
    if (c->fetched == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: allocating", what);
    return MS_OK;
}

/* Hand out the next fetched message, or fetch a batch. */
ms_status ms__js_next(ms_consumer *c, int timeout_ms, ms_delivery **out)
{
    natsMsg *nm;
    ms_delivery *d;
    jsMsgMetaData *meta = NULL;
    ms_status s;

    if (c->next_fetched == c->nfetched) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus ns;

        c->nfetched = c->next_fetched = 0;
        ns = natsSubscription_Fetch(&list, c->sub, (int)c->opts.batch,
                                    timeout_ms > 0 ? timeout_ms : 1, &jerr);
        if (ns == NATS_TIMEOUT || (ns == NATS_OK && list.Count == 0)) {
            natsMsgList_Destroy(&list);
            return ms__err(MS_ERR_TIMEOUT, "consumer %s: no message within %d ms", c->durable,
                           timeout_ms);
        }
        if (ns != NATS_OK) {
            natsMsgList_Destroy(&list);
            if (ns == NATS_INVALID_SUBSCRIPTION || ns == NATS_CONNECTION_CLOSED)
                return ms__err(MS_ERR_CLOSED, "consumer %s: closed", c->durable);
            return js_fail(ns, jerr, "consumer fetch");
        }
        /* Take the messages out of the list (the list frees only its array
         * once its slots are NULL). */
        for (int i = 0; i < list.Count && (size_t)i < c->opts.batch; i++) {
            c->fetched[c->nfetched++] = list.Msgs[i];
            list.Msgs[i] = NULL;
        }
        natsMsgList_Destroy(&list);
    }
    nm = c->fetched[c->next_fetched];
    if ((d = ms__calloc(1, sizeof *d)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "consumer %s: allocating a delivery", c->durable);
    c->fetched[c->next_fetched++] = NULL;
    d->c = c;
    d->nm = nm;
    d->count = 1;
    if (natsMsg_GetMetaData(&meta, nm) == NATS_OK) {
        d->count = meta->NumDelivered;
        jsMsgMetaData_Destroy(meta);
    }
    /* wrap takes nm: it lives as long as d->m */
    if ((s = ms__nats_wrap_msg(nm, &d->m)) != MS_OK) {
        ms__free(d);
        return ms__err_wrap(s, "consumer %s: a received message", c->durable);
    }
    *out = d;
    return MS_OK;
}

void ms__js_interrupt(ms_consumer *c)
{
    if (c->sub != NULL)
        (void)natsSubscription_Unsubscribe(c->sub);
}

void ms__js_close(ms_consumer *c)
{
    /* Messages fetched but never handed out go back at once (nak), so the
     * next reader does not wait out ack_wait for them. */
    for (size_t i = c->next_fetched; i < c->nfetched; i++) {
        (void)natsMsg_Nak(c->fetched[i], NULL);
        natsMsg_Destroy(c->fetched[i]);
    }
    if (c->nfetched > c->next_fetched && ms__nats_connection(c->bus) != NULL)
        (void)natsConnection_FlushTimeout(ms__nats_connection(c->bus), 1000);
    c->nfetched = c->next_fetched = 0;
    if (c->sub != NULL) {
        /* Unsubscribe before destroying (libnats 3.4.1 issue 637); a pull
         * subscription's interest leaves the durable consumer in place. */
        (void)natsSubscription_Unsubscribe(c->sub);
        natsSubscription_Destroy(c->sub);
        c->sub = NULL;
    }
    jsCtx_Destroy(c->js);
    c->js = NULL;
    ms__free(c->fetched);
    c->fetched = NULL;
}

ms_status ms__js_ack(ms_delivery *d)
{
    jsErrCode jerr = 0;
    natsStatus ns = natsMsg_AckSync(d->nm, NULL, &jerr);

    if (ns == NATS_ILLEGAL_STATE)
        return ms__err(MS_ERR_STATE, "delivery of '%s' was already acknowledged",
                       ms_message_subject(d->m));
    return ns == NATS_OK ? MS_OK : js_fail(ns, jerr, "acknowledging a delivery");
}

ms_status ms__js_nak(ms_delivery *d, int delay_ms)
{
    natsStatus ns = delay_ms > 0 ? natsMsg_NakWithDelay(d->nm, (int64_t)delay_ms, NULL)
                                 : natsMsg_Nak(d->nm, NULL);

    return ns == NATS_OK ? MS_OK : ms__nats_fail(ns, "refusing a delivery");
}

ms_status ms__js_progress(ms_delivery *d)
{
    natsStatus ns = natsMsg_InProgress(d->nm, NULL);

    return ns == NATS_OK ? MS_OK : ms__nats_fail(ns, "extending a delivery");
}
