// Package client drives berthd through containerd 1.6's Go client library, the paths
// Docker, nerdctl, buildkit and k3s take. tests/go-client.sh builds it (Debian's
// golang-github-containerd-containerd-dev, GOPATH mode, offline), runs it against a
// private berthd and turns each subtest into a TAP line.
//
// Environment: BERTH_SOCK (berthd's socket), BERTH_REGISTRY (host:port of a plain-http
// registry holding busybox:latest), BERTH_IMAGE_TAR (an OCI archive of busybox),
// BERTH_TMP (a scratch directory: FIFOs, mounts).
package client

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const imageName = "docker.io/library/busybox:latest"

var (
	sock     = os.Getenv("BERTH_SOCK")
	registry = os.Getenv("BERTH_REGISTRY")
	tmp      = os.Getenv("BERTH_TMP")
	// A namespace of this run that nobody created: the client's first call reads its labels.
	ns = fmt.Sprintf("go-client-%d", os.Getpid())
)

func connect(t *testing.T, opts ...containerd.ClientOpt) (*containerd.Client, context.Context) {
	t.Helper()
	opts = append([]containerd.ClientOpt{containerd.WithDefaultNamespace(ns), containerd.WithTimeout(20 * time.Second)}, opts...)
	client, err := containerd.New(sock, opts...)
	if err != nil {
		t.Fatalf("containerd.New(%s, namespace %s): %v", sock, ns, err)
	}
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 2*time.Minute)
	t.Cleanup(cancel)
	return client, ctx
}

// image: busybox, imported from BERTH_IMAGE_TAR once (and unpacked).
func image(t *testing.T, client *containerd.Client, ctx context.Context) containerd.Image {
	t.Helper()
	if img, err := client.GetImage(ctx, imageName); err == nil {
		return img
	}
	f, err := os.Open(os.Getenv("BERTH_IMAGE_TAR"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := client.Import(ctx, f)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(imgs) != 1 || imgs[0].Name != imageName {
		t.Fatalf("Import made %v, want %s", imgs, imageName)
	}
	img := containerd.NewImage(client, imgs[0])
	if err := img.Unpack(ctx, containerd.DefaultSnapshotter); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	return img
}

func fifoDir(t *testing.T) cio.Opt {
	dir, err := os.MkdirTemp(tmp, "fifo")
	if err != nil {
		t.Fatal(err)
	}
	return cio.WithFIFODir(dir)
}

// syncBuffer: cio copies into it from its own goroutines.
type syncBuffer struct {
	ch  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{ch: make(chan struct{}, 1)}
	b.ch <- struct{}{}
	return b
}
func (b *syncBuffer) Write(p []byte) (int, error) {
	<-b.ch
	defer func() { b.ch <- struct{}{} }()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string {
	<-b.ch
	defer func() { b.ch <- struct{}{} }()
	return b.buf.String()
}

// waitFor polls until cond holds (the copy goroutines may lag the exit).
func waitFor(cond func() bool) bool {
	for i := 0; i < 200; i++ {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

func exitOf(t *testing.T, ch <-chan containerd.ExitStatus) uint32 {
	t.Helper()
	select {
	case st := <-ch:
		code, _, err := st.Result()
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return code
	case <-time.After(90 * time.Second):
		t.Fatal("the process did not exit within 90 s")
	}
	return 0
}

func TestConnect(t *testing.T) {
	t.Run("NewWithFreshNamespace", func(t *testing.T) {
		client, ctx := connect(t)
		if _, err := client.Version(ctx); err != nil {
			t.Fatalf("Version: %v", err)
		}
		if v, err := client.GetLabel(ctx, defaults.DefaultRuntimeNSLabel); err != nil || v != "" {
			t.Fatalf("GetLabel of a fresh namespace: %q, %v", v, err)
		}
	})
	t.Run("IsServing", func(t *testing.T) {
		client, ctx := connect(t)
		if ok, err := client.IsServing(ctx); !ok || err != nil {
			t.Fatalf("IsServing: %v %v", ok, err)
		}
	})
}

func TestNamespaceLabels(t *testing.T) {
	client, ctx := connect(t)
	store := client.NamespaceService()
	name := ns + "-labels"
	t.Run("CreateWithLabels", func(t *testing.T) {
		if err := store.Create(ctx, name, map[string]string{"a": "1"}); err != nil {
			t.Fatal(err)
		}
		if err := store.Create(ctx, name, nil); !errdefs.IsAlreadyExists(err) {
			t.Fatalf("second Create: %v, want already exists", err)
		}
	})
	t.Run("SetLabel", func(t *testing.T) {
		if err := store.SetLabel(ctx, name, defaults.DefaultRuntimeNSLabel, "io.containerd.runc.v2"); err != nil {
			t.Fatal(err)
		}
		if err := store.SetLabel(ctx, name, "a", ""); err != nil {
			t.Fatal(err)
		}
		labels, err := store.Labels(ctx, name)
		if err != nil || len(labels) != 1 || labels[defaults.DefaultRuntimeNSLabel] != "io.containerd.runc.v2" {
			t.Fatalf("Labels: %v, %v", labels, err)
		}
	})
	t.Run("DefaultRuntimeFromLabel", func(t *testing.T) {
		c, err := containerd.New(sock, containerd.WithDefaultNamespace(name))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Runtime() != "io.containerd.runc.v2" {
			t.Fatalf("Runtime() = %q", c.Runtime())
		}
	})
	t.Run("ListAndDelete", func(t *testing.T) {
		list, err := store.List(ctx)
		if err != nil || !strings.Contains(strings.Join(list, " "), name) {
			t.Fatalf("List: %v, %v", list, err)
		}
		if err := store.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
		if labels, err := store.Labels(ctx, name); err != nil || len(labels) != 0 {
			t.Fatalf("Labels of a deleted namespace: %v, %v", labels, err)
		}
	})
}

func TestImages(t *testing.T) {
	client, ctx := connect(t)
	t.Run("PullWithUnpack", func(t *testing.T) {
		if registry == "" {
			t.Skip("no BERTH_REGISTRY")
		}
		resolver := docker.NewResolver(docker.ResolverOptions{
			Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts)),
		})
		ref := registry + "/busybox:latest"
		img, err := client.Pull(ctx, ref, containerd.WithResolver(resolver), containerd.WithPullUnpack)
		if err != nil {
			t.Fatalf("Pull %s: %v", ref, err)
		}
		if img.Name() != ref {
			t.Fatalf("pulled %s", img.Name())
		}
		if ok, err := img.IsUnpacked(ctx, containerd.DefaultSnapshotter); !ok || err != nil {
			t.Fatalf("IsUnpacked: %v %v", ok, err)
		}
		if _, err := client.GetImage(ctx, ref); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Import", func(t *testing.T) {
		img := image(t, client, ctx)
		if ok, err := img.IsUnpacked(ctx, containerd.DefaultSnapshotter); !ok || err != nil {
			t.Fatalf("IsUnpacked: %v %v", ok, err)
		}
	})
	t.Run("ExportAndReimport", func(t *testing.T) {
		var buf bytes.Buffer
		if err := client.Export(ctx, &buf, archive.WithImage(client.ImageService(), imageName), archive.WithAllPlatforms()); err != nil {
			t.Fatalf("Export: %v", err)
		}
		found := false
		tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			found = found || h.Name == "index.json"
		}
		if !found {
			t.Fatal("the exported archive has no index.json")
		}
		other := namespaces.WithNamespace(ctx, ns+"-reimport")
		imgs, err := client.Import(other, bytes.NewReader(buf.Bytes()))
		if err != nil || len(imgs) != 1 || imgs[0].Name != imageName {
			t.Fatalf("re-Import: %v, %v", imgs, err)
		}
		if err := client.ImageService().Delete(other, imageName); err != nil {
			t.Fatalf("deleting the re-imported image: %v", err)
		}
	})
}

// newContainer: busybox with a fresh snapshot and a spec from the image, running args.
func newContainer(t *testing.T, client *containerd.Client, ctx context.Context, id string, specOpts ...oci.SpecOpts) containerd.Container {
	t.Helper()
	img := image(t, client, ctx)
	specOpts = append([]oci.SpecOpts{oci.WithImageConfig(img)}, specOpts...)
	c, err := client.NewContainer(ctx, id, containerd.WithNewSnapshot(id+"-snap", img), containerd.WithNewSpec(specOpts...))
	if err != nil {
		t.Fatalf("NewContainer %s: %v", id, err)
	}
	return c
}

// cleanup: kills and deletes the task if any, then the container and its snapshot
// (unless a test deleted them already).
func cleanup(t *testing.T, ctx context.Context, c containerd.Container) {
	if task, err := c.Task(ctx, nil); err == nil {
		task.Delete(ctx, containerd.WithProcessKill)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		t.Errorf("deleting container %s: %v", c.ID(), err)
	}
}

func TestTaskIO(t *testing.T) {
	client, ctx := connect(t)
	t.Run("StdioAndExitStatus", func(t *testing.T) {
		c := newContainer(t, client, ctx, "io", oci.WithProcessArgs("sh", "-c", "echo out; echo err >&2; read x; echo got $x; exit 3"))
		defer cleanup(t, ctx, c)
		stdout, stderr := newSyncBuffer(), newSyncBuffer()
		task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(strings.NewReader("line\n"), stdout, stderr), fifoDir(t)))
		if err != nil {
			t.Fatalf("NewTask: %v", err)
		}
		ch, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if code := exitOf(t, ch); code != 3 {
			t.Fatalf("exit status %d, want 3", code)
		}
		task.IO().Wait()
		if !waitFor(func() bool { return stdout.String() == "out\ngot line\n" && stderr.String() == "err\n" }) {
			t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
		}
		st, err := task.Delete(ctx)
		if err != nil || st.ExitCode() != 3 {
			t.Fatalf("Delete: %v, %v", st, err)
		}
	})
	t.Run("Terminal", func(t *testing.T) {
		c := newContainer(t, client, ctx, "tty", oci.WithTTY, oci.WithProcessArgs("sh", "-c", "tty; stty size"))
		defer cleanup(t, ctx, c)
		out := newSyncBuffer()
		task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, nil), cio.WithTerminal, fifoDir(t)))
		if err != nil {
			t.Fatalf("NewTask: %v", err)
		}
		ch, _ := task.Wait(ctx)
		if err := task.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if code := exitOf(t, ch); code != 0 {
			t.Fatalf("exit status %d", code)
		}
		if !waitFor(func() bool { return strings.Contains(out.String(), "/dev/pts/") }) {
			t.Fatalf("no terminal: %q", out.String())
		}
	})
}

func TestTaskLifecycle(t *testing.T) {
	client, ctx := connect(t)
	c := newContainer(t, client, ctx, "life", oci.WithProcessArgs("sleep", "1000"))
	defer cleanup(t, ctx, c)
	var task containerd.Task
	t.Run("NewTaskAndStart", func(t *testing.T) {
		var err error
		if task, err = c.NewTask(ctx, cio.NullIO); err != nil {
			t.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
			t.Fatalf("Status: %v, %v", st, err)
		}
	})
	if task == nil {
		t.FailNow()
	}
	t.Run("Exec", func(t *testing.T) {
		spec, err := c.Spec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pspec := *spec.Process
		pspec.Args = []string{"sh", "-c", "echo exec-out; exit 7"}
		out := newSyncBuffer()
		p, err := task.Exec(ctx, "exec1", &pspec, cio.NewCreator(cio.WithStreams(nil, out, io.Discard), fifoDir(t)))
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		ch, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if code := exitOf(t, ch); code != 7 {
			t.Fatalf("exec exit status %d, want 7", code)
		}
		p.IO().Wait()
		if !waitFor(func() bool { return out.String() == "exec-out\n" }) {
			t.Fatalf("exec stdout %q", out.String())
		}
		if _, err := p.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Pids", func(t *testing.T) {
		pids, err := task.Pids(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range pids {
			found = found || p.Pid == task.Pid()
		}
		if !found {
			t.Fatalf("Pids %v lacks the init pid %d", pids, task.Pid())
		}
	})
	t.Run("PauseResume", func(t *testing.T) {
		if err := task.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := task.Status(ctx); err != nil || st.Status != containerd.Paused {
			t.Fatalf("Status after Pause: %v, %v", st, err)
		}
		if err := task.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
			t.Fatalf("Status after Resume: %v, %v", st, err)
		}
	})
	t.Run("KillAndWait", func(t *testing.T) {
		ch, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := exitOf(t, ch); code != 137 {
			t.Fatalf("exit status %d, want 137", code)
		}
	})
	t.Run("DeleteWithSnapshotCleanup", func(t *testing.T) {
		if _, err := task.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			t.Fatal(err)
		}
		if _, err := client.SnapshotService(info.Snapshotter).Stat(ctx, info.SnapshotKey); !errdefs.IsNotFound(err) {
			t.Fatalf("the snapshot outlived its container: %v", err)
		}
		if _, err := client.LoadContainer(ctx, c.ID()); !errdefs.IsNotFound(err) {
			t.Fatalf("LoadContainer after Delete: %v", err)
		}
	})
}

func TestSubscribe(t *testing.T) {
	client, ctx := connect(t)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	envelopes, errs := client.Subscribe(sctx, `topic~="/tasks/",namespace=="`+ns+`"`)
	time.Sleep(300 * time.Millisecond) // the subscription reaches berthd before the events
	c := newContainer(t, client, ctx, "events", oci.WithProcessArgs("true"))
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := task.Wait(ctx)
	task.Start(ctx)
	exitOf(t, ch)
	task.Delete(ctx)
	cleanup(t, ctx, c)
	want := []string{"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"}
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case e := <-envelopes:
			if e.Namespace != ns || !strings.HasPrefix(e.Topic, "/tasks/") {
				t.Fatalf("the filter let through %s %s", e.Namespace, e.Topic)
			}
			got = append(got, e.Topic)
		case err := <-errs:
			t.Fatalf("Subscribe: %v", err)
		case <-timeout:
			t.Fatalf("events so far %v, want %v", got, want)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestLeases(t *testing.T) {
	client, ctx := connect(t)
	manager := client.LeasesService()
	data := []byte("leased content " + ns)
	dgst := digest.FromBytes(data)
	var lease leases.Lease
	t.Run("CreateWithLabels", func(t *testing.T) {
		var err error
		lease, err = manager.Create(ctx, leases.WithID("build-1"), leases.WithLabels(map[string]string{"k": "v"}),
			leases.WithExpiration(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		list, err := manager.List(ctx, `id=="build-1"`)
		if err != nil || len(list) != 1 || list[0].Labels["k"] != "v" {
			t.Fatalf("List: %v, %v", list, err)
		}
	})
	if lease.ID == "" {
		t.FailNow()
	}
	t.Run("ContentUnderLease", func(t *testing.T) {
		lctx := leases.WithLease(ctx, lease.ID)
		desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: int64(len(data))}
		if err := content.WriteBlob(lctx, client.ContentStore(), "leased-"+ns, bytes.NewReader(data), desc); err != nil {
			t.Fatal(err)
		}
		res, err := manager.ListResources(ctx, lease)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range res {
			found = found || (r.Type == "content" && r.ID == dgst.String())
		}
		if !found {
			t.Fatalf("ListResources %v lacks the blob", res)
		}
	})
	t.Run("AddAndDeleteResource", func(t *testing.T) {
		r := leases.Resource{ID: "some-key", Type: "snapshots/overlayfs"}
		if err := manager.AddResource(ctx, lease, r); err != nil {
			t.Fatal(err)
		}
		if err := manager.DeleteResource(ctx, lease, r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("DeleteSynchronous", func(t *testing.T) {
		if err := manager.Delete(ctx, lease, leases.SynchronousDelete); err != nil {
			t.Fatal(err)
		}
		if _, err := client.ContentStore().Info(ctx, dgst); !errdefs.IsNotFound(err) {
			t.Fatalf("the blob outlived its only lease: %v", err)
		}
	})
	t.Run("ClientWithLease", func(t *testing.T) {
		lctx, done, err := client.WithLease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := leases.FromContext(lctx); !ok {
			t.Fatal("no lease in the context")
		}
		if err := done(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestContentWriterResume(t *testing.T) {
	client, ctx := connect(t)
	lctx, done, err := client.WithLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer done(ctx)
	cs := client.ContentStore()
	data := bytes.Repeat([]byte("resumable "+ns+"\n"), 5000)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	ref := "resume-" + ns
	half := len(data) / 2
	w, err := content.OpenWriter(lctx, cs, content.WithRef(ref), content.WithDescriptor(desc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	w.Close() // an interrupted download: the ingest stays
	w, err = content.OpenWriter(lctx, cs, content.WithRef(ref), content.WithDescriptor(desc))
	if err != nil {
		t.Fatalf("reopening the ingest: %v", err)
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil || st.Offset != int64(half) {
		t.Fatalf("resumed Status: offset %d (want %d), %v", st.Offset, half, err)
	}
	if _, err := w.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(lctx, desc.Size, desc.Digest); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, err := content.ReadBlob(lctx, cs, desc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob: %d bytes, %v", len(got), err)
	}
}

// TestDockerStyleTask: what dockerd does. Its own graph driver mounts the rootfs; the
// container has no snapshot, Tasks.Create gets no rootfs mounts, and the spec's
// root.path is that mount's absolute path. Runtime io.containerd.runc.v2 with runc
// Options, as Docker 20.10 sends them.
func TestDockerStyleTask(t *testing.T) {
	client, ctx := connect(t)
	img := image(t, client, ctx)
	sn := client.SnapshotService(containerd.DefaultSnapshotter)
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := "docker-style-" + ns
	mounts, err := sn.Prepare(ctx, key, identity.ChainID(diffIDs).String())
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	defer sn.Remove(ctx, key)
	rootfs := filepath.Join(tmp, "docker-rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(mounts, rootfs); err != nil {
		t.Fatalf("mounting the rootfs: %v", err)
	}
	defer mount.UnmountAll(rootfs, 0)
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("graph-driver-root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := oci.GenerateSpec(ctx, client, &containers.Container{ID: "docker-style"},
		oci.WithRootFSPath(rootfs), oci.WithImageConfig(img), oci.WithProcessArgs("cat", "/marker"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewContainer(ctx, "docker-style", containerd.WithSpec(spec),
		containerd.WithRuntime("io.containerd.runc.v2", &options.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup(t, ctx, c)
	out := newSyncBuffer()
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, io.Discard), fifoDir(t)))
	if err != nil {
		t.Fatalf("NewTask: %v", err)
	}
	ch, _ := task.Wait(ctx)
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if code := exitOf(t, ch); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	task.IO().Wait()
	if !waitFor(func() bool { return out.String() == "graph-driver-root\n" }) {
		t.Fatalf("the task did not run in root.path %s: %q", rootfs, out.String())
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}
