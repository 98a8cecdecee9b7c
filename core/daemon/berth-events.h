/* berth-events.h — the in-core event exchange (core-internal).
 *
 * Services and the core publish containerd events (the protobuf messages of
 * containerd/api/events, e.g. NamespaceCreate) with a namespace and a topic
 * ("/namespaces/create"); Events.Subscribe and internal listeners receive envelopes.
 * Publishing never blocks on a slow subscriber: each subscriber has a bounded queue and
 * one that overflows is dropped with an error on its stream.
 */
#pragma once

#include <gio/gio.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

typedef struct _BerthEvents BerthEvents;

typedef struct {
  gint64 timestamp; /* µs since the epoch */
  char *namespace_;
  char *topic;
  char *type_url;   /* "containerd.events.NamespaceCreate" */
  GBytes *payload;  /* the packed event message */
} BerthEventEnvelope;

BerthEvents *berth_events_new (void);
void berth_events_free (BerthEvents *events);
/* Packs @event; type URL from its descriptor ("containerd.events.X" for containerd's
 * event types). Thread-safe. */
void berth_events_publish (BerthEvents *events, const char *namespace_, const char *topic,
                           const ProtobufCMessage *event);
/* Forwards an already packed envelope (Events.Forward / Publish). */
void berth_events_publish_envelope (BerthEvents *events, const BerthEventEnvelope *envelope);

typedef struct _BerthEventSubscription BerthEventSubscription;
/* @filters: containerd filter strings over topic/namespace (NULL: everything). */
BerthEventSubscription *berth_events_subscribe (BerthEvents *events, const char *const *filters, GError **error);
/* Blocks for the next envelope; NULL when @cancellable fires or the subscription
 * overflowed (error set). Free with berth_event_envelope_free. */
/* A subscriber fed without a thread: @func runs in the publishing thread, under the
 * exchange's lock (it must not block or publish), for each matching envelope; once it
 * returns FALSE it is not called again. Free with berth_event_subscription_free, after
 * which @func is not running and will not run. */
typedef gboolean (*BerthEventFunc) (const BerthEventEnvelope *envelope, gpointer user_data);
BerthEventSubscription *berth_events_subscribe_func (BerthEvents *events, const char *const *filters,
                                                     BerthEventFunc func, gpointer user_data, GError **error);
BerthEventEnvelope *berth_event_subscription_next (BerthEventSubscription *sub, GCancellable *cancellable,
                                                   GError **error);
void berth_event_subscription_free (BerthEventSubscription *sub);
void berth_event_envelope_free (BerthEventEnvelope *envelope);

G_END_DECLS
