// containerd 1.6's own conformance suites (snapshots/testsuite, content/testsuite) run
// against a berthd through containerd's gRPC proxies, as a remote snapshotter or content
// store is used. Each test gets namespaces of its own, so the suites' parallel tests never
// see each other's snapshots or ingests.
//
// Built offline in GOPATH mode by tests/containerd-suites.sh; flags:
//   -berth.address SOCK   berthd's socket
//   -berth.snapshotter N  run SnapshotterSuite on snapshotter N (repeatable via -test.run)
package suites

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/content"
	contentproxy "github.com/containerd/containerd/content/proxy"
	contentsuite "github.com/containerd/containerd/content/testsuite"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	snapshotproxy "github.com/containerd/containerd/snapshots/proxy"
	snapshotsuite "github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

var (
	address      = flag.String("berth.address", "", "berthd socket")
	snapshotters = flag.String("berth.snapshotters", "overlayfs,native,ostree", "snapshotters to run the suite on")
	counter      uint64
)

func connect(t *testing.T) *grpc.ClientConn {
	if *address == "" {
		t.Skip("no -berth.address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, dialer.DialAddress(*address), grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatalf("dial %s: %v", *address, err)
	}
	return conn
}

// A fresh namespace name for one test.
func freshNamespace(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1000000, atomic.AddUint64(&counter, 1))
}

// nsSnapshotter pins every call to one namespace: the suite puts "testsuite" in its
// context for all tests, which run in parallel.
type nsSnapshotter struct {
	snapshots.Snapshotter
	ns string
}

func (s *nsSnapshotter) c(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, s.ns)
}
func (s *nsSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	return s.Snapshotter.Stat(s.c(ctx), key)
}
func (s *nsSnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	return s.Snapshotter.Update(s.c(ctx), info, fieldpaths...)
}
func (s *nsSnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return s.Snapshotter.Usage(s.c(ctx), key)
}
func (s *nsSnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	return s.Snapshotter.Mounts(s.c(ctx), key)
}
func (s *nsSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.Snapshotter.Prepare(s.c(ctx), key, parent, opts...)
}
func (s *nsSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.Snapshotter.View(s.c(ctx), key, parent, opts...)
}
func (s *nsSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return s.Snapshotter.Commit(s.c(ctx), name, key, opts...)
}
func (s *nsSnapshotter) Remove(ctx context.Context, key string) error {
	return s.Snapshotter.Remove(s.c(ctx), key)
}
func (s *nsSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return s.Snapshotter.Walk(s.c(ctx), fn, filters...)
}

// The suite calls Close once per test (twice in CloseTwice): nothing to close on a proxy.
func (s *nsSnapshotter) Close() error { return nil }

// cleanup removes what a test left in its namespace (leaves first), then the namespace.
func (s *nsSnapshotter) cleanup(nsc namespacesapi.NamespacesClient) error {
	ctx := namespaces.WithNamespace(context.Background(), s.ns)
	for round := 0; round < 200; round++ {
		var infos []snapshots.Info
		if err := s.Snapshotter.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
			infos = append(infos, i)
			return nil
		}); err != nil {
			return err
		}
		if len(infos) == 0 {
			break
		}
		parents := map[string]bool{}
		for _, i := range infos {
			parents[i.Parent] = true
		}
		for _, i := range infos {
			if !parents[i.Name] {
				if err := s.Snapshotter.Remove(ctx, i.Name); err != nil {
					return fmt.Errorf("removing %s: %w", i.Name, err)
				}
			}
		}
	}
	// A test that made nothing (a skipped one) made no namespace either.
	if _, err := nsc.Delete(ctx, &namespacesapi.DeleteNamespaceRequest{Name: s.ns}); err != nil && !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		return err
	}
	return nil
}

func TestSnapshotters(t *testing.T) {
	conn := connect(t)
	nsc := namespacesapi.NewNamespacesClient(conn)
	for _, name := range splitList(*snapshotters) {
		name := name
		t.Run(name, func(t *testing.T) {
			proxy := snapshotproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), name)
			snapshotsuite.SnapshotterSuite(t, name, func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
				s := &nsSnapshotter{Snapshotter: proxy, ns: freshNamespace("suite-" + name)}
				return s, func() error { return s.cleanup(nsc) }, nil
			})
		})
	}
}

func contentStoreFn(conn *grpc.ClientConn) contentsuite.StoreInitFn {
	return func(ctx context.Context, root string) (context.Context, content.Store, func() error, error) {
		prefix := freshNamespace("suite-content")
		var n uint64
		// The suite derives one context per simulated client (cross-namespace tests use two).
		ctx = contentsuite.SetContextWrapper(ctx, func(ctx context.Context) (context.Context, func(context.Context) error, error) {
			return namespaces.WithNamespace(ctx, fmt.Sprintf("%s-n%d", prefix, atomic.AddUint64(&n, 1))),
				func(context.Context) error { return nil }, nil
		})
		return ctx, contentproxy.NewContentStore(contentapi.NewContentClient(conn)), func() error { return nil }, nil
	}
}

func TestContent(t *testing.T) {
	conn := connect(t)
	contentsuite.ContentSuite(t, "berth", contentStoreFn(conn))
	contentsuite.ContentCrossNSSharedSuite(t, "berth", contentStoreFn(conn))
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
