/* glib-floor.c — the smallest daemon built the way berthd is: GLib, GObject and GIO,
 * one main loop, a listening Unix socket that answers a connection. Its resident size is
 * the floor for berthd's idle memory: the pages of libc, GLib and GIO that any such
 * process touches just to start and serve. tests/bench/compare builds and measures it.
 *   glib-floor SOCKET-PATH */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

static gboolean
on_incoming (GSocketService *service G_GNUC_UNUSED, GSocketConnection *connection,
             GObject *source G_GNUC_UNUSED, gpointer user_data G_GNUC_UNUSED)
{
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_output_stream_write_all (out, "ok\n", 3, NULL, NULL, NULL);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  if (argc != 2)
    {
      g_printerr ("usage: glib-floor SOCKET-PATH\n");
      return 2;
    }
  g_autoptr (GSocketService) service = g_socket_service_new ();
  g_autoptr (GSocketAddress) address = g_unix_socket_address_new (argv[1]);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error))
    {
      g_printerr ("glib-floor: %s\n", error->message);
      return 1;
    }
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), NULL);
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (loop);
  return 0;
}
