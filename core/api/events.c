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
    .timestamp = in->timestamp ? berth_api_timestamp_to_usec (in->timestamp) : g_get_real_time (),
    .namespace_ = in->namespace_,
    .topic = in->topic,
    .type_url = in->event ? in->event->type_url : (char *) "",
    .payload = in->event ? g_bytes_new (in->event->value.data, in->event->value.len) : g_bytes_new (NULL, 0),
  };
  berth_events_publish_envelope (berth_daemon_get_events (user_data), &envelope);
  g_bytes_unref (envelope.payload);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static gboolean
events_subscribe (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Events__V1__SubscribeRequest *req = (gpointer) request;
  /* Counted on the wire, NULL-terminated for the exchange. */
  g_autofree const char **filters = g_new0 (const char *, req->n_filters + 1);
  for (size_t i = 0; i < req->n_filters; i++)
    filters[i] = req->filters[i];
  BerthEventSubscription *sub =
    berth_events_subscribe (berth_daemon_get_events (user_data), (const char *const *) filters, error);
  if (sub == NULL)
    return FALSE;
  /* ctr waits for the response headers before it considers itself subscribed. */
  berth_grpc_call_send_headers (call);
  gboolean ok = TRUE;
  for (;;)
    {
      g_autoptr (GError) local_error = NULL;
      BerthEventEnvelope *envelope = berth_event_subscription_next (sub, berth_grpc_call_get_cancellable (call), &local_error);
      if (envelope == NULL)
        {
          /* The client going away ends a subscription normally. */
          if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_CANCELLED))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              ok = FALSE;
            }
          break;
        }
      Google__Protobuf__Timestamp *ts = berth_api_timestamp_new (envelope->timestamp);
      Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
      any.type_url = envelope->type_url;
      any.value.data = (guint8 *) g_bytes_get_data (envelope->payload, &any.value.len);
      Containerd__Services__Events__V1__Envelope out = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;
      out.timestamp = ts;
      out.namespace_ = envelope->namespace_;
      out.topic = envelope->topic;
      out.event = &any;
      gboolean sent = berth_grpc_call_send (call, &out.base, &local_error);
      berth_grpc_message_free (&ts->base);
      berth_event_envelope_free (envelope);
      if (!sent)
        break;
    }
  berth_event_subscription_free (sub);
  return ok;
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
