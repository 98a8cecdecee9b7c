/* webserver.c — the stand-in for the nginx and httpd images critest runs (tests/cri-images/).
 *
 * Installed as /usr/sbin/nginx or /usr/local/bin/httpd (pidof finds it under that name).
 * Answers every HTTP request with 200 and a small page, on the port in $PORT (default 80);
 * writes its pid to $PIDFILE when set, as nginx does; logs its command line, as httpd
 * does ("Command line: 'httpd -D FOREGROUND'"); with $PROCTITLE set, it re-executes itself
 * under that argv[0] ("nginx: master process ...", which critest greps /proc/1/cmdline
 * for), keeping its command name. It runs as a container's PID 1, which gets
 * no default signal action, so SIGTERM and SIGINT are handled: a stop is immediate. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void
on_signal (int sig)
{
  (void) sig;
  _exit (0);
}

int
main (int argc, char **argv)
{
  const char *port_env = getenv ("PORT");
  const char *pidfile = getenv ("PIDFILE");
  int port = port_env ? atoi (port_env) : 80;
  const char *title = getenv ("PROCTITLE");
  if (title != NULL && strcmp (argv[0], title) != 0)
    {
      char self[4096];
      ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
      if (n > 0)
        {
          self[n] = '\0';
          char *args[] = { (char *) title, NULL };
          execv (self, args);
        }
      perror ("webserver: re-exec");
    }

  signal (SIGTERM, on_signal);
  signal (SIGINT, on_signal);
  signal (SIGPIPE, SIG_IGN);
  printf ("Command line: '");
  for (int i = 0; i < argc; i++)
    printf ("%s%s", i ? " " : "", argv[i]);
  printf ("'\n");
  fflush (stdout);

  int fd = socket (AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr.s_addr = htonl (INADDR_ANY) };
  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, 64) < 0)
    {
      perror ("webserver: listen");
      return 1;
    }
  if (pidfile != NULL)
    {
      FILE *f = fopen (pidfile, "w");
      if (f == NULL || fprintf (f, "%d\n", (int) getpid ()) < 0 || fclose (f) != 0)
        {
          perror (pidfile);
          return 1;
        }
    }
  static const char page[] = "<html><body><h1>Welcome to nginx!</h1></body></html>\n";
  for (;;)
    {
      int c = accept (fd, NULL, NULL);
      if (c < 0)
        continue;
      struct timeval tv = { .tv_sec = 5 };
      setsockopt (c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[4096];
      size_t len = 0;
      ssize_t n;
      /* The request's head, up to the blank line (bodies are not expected). */
      while (len < sizeof buf - 1 && (n = read (c, buf + len, sizeof buf - 1 - len)) > 0)
        {
          len += n;
          buf[len] = '\0';
          if (strstr (buf, "\r\n\r\n") != NULL)
            break;
        }
      char head[256];
      int hlen = snprintf (head, sizeof head,
                           "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\n\r\n",
                           sizeof page - 1);
      if (write (c, head, hlen) == hlen)
        (void) !write (c, page, sizeof page - 1);
      close (c);
    }
}
