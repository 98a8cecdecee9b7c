/* berth-events.c — the in-core event exchange. */
#include "config.h"

#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include "berth-events.h"

/* A subscriber that falls this far behind is dropped rather than slowing publishers. */
#define SUBSCRIBER_QUEUE_MAX 4096

struct _BerthEvents {
  GMutex lock;
  GList *subscriptions;
};

struct _BerthEventSubscription {
  BerthEvents *events;
  BerthFilter *filter;
  GMutex lock;
  GCond cond;
  GQueue queue;
  gboolean overflowed;
  BerthEventFunc func; /* instead of the queue */
  gpointer func_data;
};

BerthEvents *
berth_events_new (void)
{
  BerthEvents *events = g_new0 (BerthEvents, 1);
  g_mutex_init (&events->lock);
  return events;
}

void
berth_events_free (BerthEvents *events)
{
  if (events == NULL)
    return;
  g_warn_if_fail (events->subscriptions == NULL);
  g_mutex_clear (&events->lock);
  g_free (events);
}

void
berth_event_envelope_free (BerthEventEnvelope *envelope)
{
  if (envelope == NULL)
    return;
  g_free (envelope->namespace_);
  g_free (envelope->topic);
  g_free (envelope->type_url);
  g_clear_pointer (&envelope->payload, g_bytes_unref);
  g_free (envelope);
}

static BerthEventEnvelope *
envelope_copy (const BerthEventEnvelope *envelope)
{
  BerthEventEnvelope *copy = g_new0 (BerthEventEnvelope, 1);
  copy->timestamp = envelope->timestamp;
  copy->namespace_ = g_strdup (envelope->namespace_);
  copy->topic = g_strdup (envelope->topic);
  copy->type_url = g_strdup (envelope->type_url);
  copy->payload = envelope->payload ? g_bytes_ref (envelope->payload) : g_bytes_new (NULL, 0);
  return copy;
}

static const char *
envelope_field (const char *const *fieldpath, gpointer object)
{
  const BerthEventEnvelope *envelope = object;
  if (fieldpath[0] == NULL || fieldpath[1] != NULL)
    return NULL;
  if (g_str_equal (fieldpath[0], "topic"))
    return envelope->topic;
  if (g_str_equal (fieldpath[0], "namespace"))
    return envelope->namespace_;
  return NULL;
}

void
berth_events_publish_envelope (BerthEvents *events, const BerthEventEnvelope *envelope)
{
  g_debug ("event %s in %s", envelope->topic, envelope->namespace_);
  g_mutex_lock (&events->lock);
  for (GList *l = events->subscriptions; l != NULL; l = l->next)
    {
      BerthEventSubscription *sub = l->data;
      if (!berth_filter_match (sub->filter, envelope_field, (gpointer) envelope))
        continue;
      if (sub->func != NULL)
        {
          if (!sub->overflowed && !sub->func (envelope, sub->func_data))
            sub->overflowed = TRUE;
          continue;
        }
      g_mutex_lock (&sub->lock);
      if (sub->queue.length >= SUBSCRIBER_QUEUE_MAX)
        sub->overflowed = TRUE;
      else if (!sub->overflowed)
        g_queue_push_tail (&sub->queue, envelope_copy (envelope));
      g_cond_broadcast (&sub->cond);
      g_mutex_unlock (&sub->lock);
    }
  g_mutex_unlock (&events->lock);
}

void
berth_events_publish (BerthEvents *events, const char *namespace_, const char *topic, const ProtobufCMessage *event)
{
  gsize size = protobuf_c_message_get_packed_size (event);
  guint8 *data = g_malloc (size ? size : 1);
  protobuf_c_message_pack (event, data);
  BerthEventEnvelope envelope = {
    .timestamp = g_get_real_time (),
    .namespace_ = (char *) namespace_,
    .topic = (char *) topic,
    .type_url = (char *) event->descriptor->name,
    .payload = g_bytes_new_take (data, size),
  };
  berth_events_publish_envelope (events, &envelope);
  g_bytes_unref (envelope.payload);
}

BerthEventSubscription *
berth_events_subscribe (BerthEvents *events, const char *const *filters, GError **error)
{
  g_autoptr (BerthFilter) filter = berth_filter_parse (filters, error);
  if (filter == NULL)
    return NULL;
  BerthEventSubscription *sub = g_new0 (BerthEventSubscription, 1);
  sub->events = events;
  sub->filter = g_steal_pointer (&filter);
  g_mutex_init (&sub->lock);
  g_cond_init (&sub->cond);
  g_mutex_lock (&events->lock);
  events->subscriptions = g_list_prepend (events->subscriptions, sub);
  g_mutex_unlock (&events->lock);
  return sub;
}

BerthEventSubscription *
berth_events_subscribe_func (BerthEvents *events, const char *const *filters, BerthEventFunc func, gpointer user_data,
                             GError **error)
{
  g_autoptr (BerthFilter) filter = berth_filter_parse (filters, error);
  if (filter == NULL)
    return NULL;
  BerthEventSubscription *sub = g_new0 (BerthEventSubscription, 1);
  sub->events = events;
  sub->filter = g_steal_pointer (&filter);
  sub->func = func;
  sub->func_data = user_data;
  g_mutex_init (&sub->lock);
  g_cond_init (&sub->cond);
  g_mutex_lock (&events->lock);
  events->subscriptions = g_list_prepend (events->subscriptions, sub);
  g_mutex_unlock (&events->lock);
  return sub;
}

static void
wake_subscription (GCancellable *cancellable, gpointer data)
{
  BerthEventSubscription *sub = data;
  g_mutex_lock (&sub->lock);
  g_cond_broadcast (&sub->cond);
  g_mutex_unlock (&sub->lock);
}

BerthEventEnvelope *
berth_event_subscription_next (BerthEventSubscription *sub, GCancellable *cancellable, GError **error)
{
  gulong handler = cancellable ? g_cancellable_connect (cancellable, G_CALLBACK (wake_subscription), sub, NULL) : 0;
  g_mutex_lock (&sub->lock);
  while (sub->queue.length == 0 && !sub->overflowed && !g_cancellable_is_cancelled (cancellable))
    g_cond_wait (&sub->cond, &sub->lock);
  BerthEventEnvelope *envelope = sub->overflowed ? NULL : g_queue_pop_head (&sub->queue);
  gboolean overflowed = sub->overflowed;
  g_mutex_unlock (&sub->lock);
  g_cancellable_disconnect (cancellable, handler);
  if (envelope == NULL)
    {
      if (overflowed)
        berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED,
                     "event subscriber fell more than %d events behind and was dropped", SUBSCRIBER_QUEUE_MAX);
      else
        berth_throw (error, BERTH_ERROR_CANCELLED, "subscription cancelled");
    }
  return envelope;
}

void
berth_event_subscription_free (BerthEventSubscription *sub)
{
  if (sub == NULL)
    return;
  g_mutex_lock (&sub->events->lock);
  sub->events->subscriptions = g_list_remove (sub->events->subscriptions, sub);
  g_mutex_unlock (&sub->events->lock);
  g_queue_clear_full (&sub->queue, (GDestroyNotify) berth_event_envelope_free);
  berth_filter_free (sub->filter);
  g_mutex_clear (&sub->lock);
  g_cond_clear (&sub->cond);
  g_free (sub);
}
