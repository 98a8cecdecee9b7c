/* shim.h — what berth-shim's files share: the one container's state (defined in
 * berth-shim.c) and the functions of shim-runtime.c, shim-stdio.c, shim-exec.c and
 * shim-verbs.c. Plain libc, as all of the shim. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "cri-log.h"
#include "shim-request.h"

#define MAX_WAITERS 64
#define MAX_EXECS 64
#define LINE_MAX_LEN 512

/* A process's terminal: the pty master and the client's FIFOs it is copied to/from. */
typedef struct {
  int master, in, out;
} Console;
#define NO_CONSOLE { -1, -1, -1 }

/* A waiter: a connection waiting for the exit of init (exec = -1) or an exec. */
typedef struct {
  int fd;
  int exec;
} Waiter;

typedef struct {
  char id[128];
  pid_t pid; /* 0 until started */
  int used, exited, status;
  long long exited_at;
  Console console;
} Exec;

/* ---------------- state (berth-shim.c) ---------------- */

extern const char *state_dir, *runtime, *container_id, *bundle;
extern char runtime_root[4096], pid_file[4096], log_file[4096], exit_file[4096], sock_path[4096];
extern pid_t init_pid;
extern Console init_console;
extern int started, paused, exited, exit_status;
extern long long exited_at_ns;
extern Waiter waiters[MAX_WAITERS];
extern int n_waiters;
extern Exec execs[MAX_EXECS];
/* With cri://PATH as STDOUT/STDERR, init's output comes through these pipes and is
 * written to PATH in the CRI log format. */
extern CriLogStream cri_streams[2];

/* ---------------- the runtime (shim-runtime.c) ---------------- */

/* Answers "err MESSAGE" on @ready_fd (or stderr when -1) and exits. */
void die (int ready_fd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3), noreturn));
long long now_ns (void);
/* Runs the OCI runtime with @argv (argv[0] unused: runtime and --root are put first);
 * stdio as given. Returns its exit status, or -1. */
int run_runtime (char *const argv[], int in, int out, int err);
/* The last line the runtime logged, into @buf. */
void runtime_error (char *buf, size_t size);
/* The init's exit status and time, to STATE_DIR/exit. */
void write_exit_file (void);

/* ---------------- streams and terminals (shim-stdio.c) ---------------- */

/* A stream path ("-", FIFO, file://PATH, cri://PATH) opened with @flags. */
int open_stream (const char *path, int flags);
/* Moves what is readable from @from to @to; FALSE at end of stream. */
int pump (int from, int to);
/* Receives the pty master the runtime sends over the console socket. */
int receive_pty (int listen_fd);
int console_socket_path (char *path, size_t size);
void console_socket_remove (const char *path);
int console_listen (const char *path);
void console_close (Console *console);

/* ---------------- exec'd processes (shim-exec.c) ---------------- */

/* The slot of exec @id, or -1. */
int find_exec (const char *id);
/* A request naming an exec: add ID | start ID | kill SIG ALL ID | wait ID | state ID |
 * delete ID; returns as a verb does (shim-verbs.c). */
int handle_exec (int fd, const char *verb, const char *id, int sig);

/* ---------------- requests (shim-verbs.c) ---------------- */

/* One answer line on @fd. */
void reply (int fd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Collects exited children, answering the connections that wait for them. */
void reap (void);
/* Handles one request; returns 1 when the shim should exit afterwards, -1 when the
 * connection stays open (a wait), 0 otherwise. */
int handle (int fd, const char *buf, size_t len);
