/* events.c — containerd.services.events.v1.Events over the core's exchange. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

static gboolean
validate_topic (const char *topic, GError **error)
{
  if (topic == NULL || topic[0] != '/' || topic[1] == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "topic \"%s\" must start with / and name something",
                        topic ? topic : "");
  return TRUE;
}

static ProtobufCMessage *
events_publish (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Events__V1__PublishRequest *req = (gpointer) request;
  if (!validate_topic (req->topic, error))
    return NULL;
  if (req->event == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no event given"), NULL;
  BerthEventEnvelope envelope = {
    .timestamp = g_get_real_time (),
    .namespace_ = (char *) berth_grpc_call_get_namespace (call),
    .topic = req->topic,
    .type_url = req->event->type_url,
    .payload = g_bytes_new (req->event->value.data, req->event->value.len),
  };
  berth_events_publish_envelope (berth_daemon_get_events (user_data), &envelope);
  g_bytes_unref (envelope.payload);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
events_forward (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Events__V1__ForwardRequest *req = (gpointer) request;
  const Containerd__Services__Events__V1__Envelope *in = req->envelope;
  if (in == NULL || !validate_topic (in->topic, error))
    return in ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no envelope given"), NULL);
  BerthEventEnvelope envelope = {
    .timestamp = in->timestamp ? berth_schema_timestamp_to_usec (in->timestamp) : g_get_real_time (),
    .namespace_ = in->namespace_,
    .topic = in->topic,
    .type_url = in->event ? in->event->type_url : (char *) "",
    .payload = in->event ? g_bytes_new (in->event->value.data, in->event->value.len) : g_bytes_new (NULL, 0),
  };
  berth_events_publish_envelope (berth_daemon_get_events (user_data), &envelope);
  g_bytes_unref (envelope.payload);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

typedef struct {
  BerthGrpcCall *call;
  BerthEventSubscription *sub;
} Subscriber;

/* In the publisher's thread: queue the envelope on the call without waiting. A client
 * that does not read falls behind by the call's queue bound and is dropped. */
static gboolean
subscriber_feed (const BerthEventEnvelope *envelope, gpointer user_data)
{
  Subscriber *subscriber = user_data;
  Google__Protobuf__Timestamp *ts = berth_schema_timestamp_new (envelope->timestamp);
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = envelope->type_url;
  any.value.data = (guint8 *) g_bytes_get_data (envelope->payload, &any.value.len);
  Containerd__Services__Events__V1__Envelope out = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;
  out.timestamp = ts;
  out.namespace_ = envelope->namespace_;
  out.topic = envelope->topic;
  out.event = &any;
  GError *error = NULL;
  gboolean sent = berth_grpc_call_try_send (subscriber->call, &out.base, &error);
  berth_grpc_message_free (&ts->base);
  if (sent)
    return TRUE;
  if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_RESOURCE_EXHAUSTED))
    {
      g_prefix_error (&error, "event subscriber dropped: ");
      berth_grpc_call_complete (subscriber->call, NULL, error);
    }
  else
    g_error_free (error); /* the call is over: its end unsubscribes */
  return FALSE;
}

/* On the main context, when the call is over for any reason. */
static void
subscriber_end (gpointer data)
{
  Subscriber *subscriber = data;
  berth_event_subscription_free (subscriber->sub);
  berth_grpc_call_unref (subscriber->call);
  g_free (subscriber);
}

/* Holds no thread: the subscription feeds the call from whichever thread publishes. */
static gboolean
events_subscribe (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Events__V1__SubscribeRequest *req = (gpointer) request;
  /* Counted on the wire, NULL-terminated for the exchange. */
  g_autofree const char **filters = g_new0 (const char *, req->n_filters + 1);
  for (size_t i = 0; i < req->n_filters; i++)
    filters[i] = req->filters[i];
  Subscriber *subscriber = g_new0 (Subscriber, 1);
  subscriber->call = berth_grpc_call_ref (call);
  subscriber->sub = berth_events_subscribe_func (berth_daemon_get_events (user_data), (const char *const *) filters,
                                                 subscriber_feed, subscriber, error);
  if (subscriber->sub == NULL)
    {
      berth_grpc_call_unref (subscriber->call);
      g_free (subscriber);
      return FALSE;
    }
  /* ctr waits for the response headers before it considers itself subscribed. */
  berth_grpc_call_send_headers (call);
  berth_grpc_call_defer (call, subscriber_end, subscriber);
  return FALSE;
}

void
berth_api_register_events (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Publish", BERTH_GRPC_UNARY, events_publish, NULL },
    { "Forward", BERTH_GRPC_UNARY, events_forward, NULL },
    { "Subscribe", BERTH_GRPC_SERVER_STREAMING, NULL, events_subscribe },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__events__v1__events__descriptor, methods, daemon);
}
