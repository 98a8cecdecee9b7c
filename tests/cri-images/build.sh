#!/bin/bash
# Builds the stand-in images critest v1.26.1 pulls, offline: busybox-static plus the two
# tiny static programs beside this script where a behaviour is needed.
#   build.sh OUTDIR   writes OUTDIR/NAME.tar (OCI archives) and OUTDIR/images, one
#                     "ARCHIVE REFERENCE" a line: every name critest uses, minus the prefix
#                     host (the caller pushes each to the registry standing in for that host).
# Cached: nothing is rebuilt while this directory's files are unchanged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=$1
# critest.sh and crictl.sh run side by side (make -j) and share OUT: one builds, the other
# waits for it and then finds the images cached.
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
stamp=$(cat "$here"/*.c "$here/build.sh" "$here/../make-image.py" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/images" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
rm -rf "$OUT"
mkdir -p "$OUT/src"
cd "$OUT/src"
mk () { python3 "$here/../make-image.py" "$OUT/$1.tar" --layer bb --name "stand-in/$1" "${@:2}" >/dev/null; }
cc_static () { gcc -static -Os -Wall -Wextra -Werror -o "$2" "$here/$1.c"; }

# busybox as the busybox image has it: applets hardlinked to /bin/busybox, not symlinked
# (critest masks /bin/ls, which must not mask busybox itself), plus pgrep and ipcs, which
# Debian's busybox-static leaves out, as small scripts over /proc.
mkdir -p bb/bin bb/usr/bin bb/root bb/tmp bb/proc bb/sys bb/dev bb/etc bb/var/run
chmod 1777 bb/tmp
cp "$(command -v busybox || echo /bin/busybox)" bb/bin/busybox
for applet in $(bb/bin/busybox --list); do
  [ "$applet" = busybox ] || ln bb/bin/busybox "bb/bin/$applet"
done
cat >bb/usr/bin/pgrep <<'SH'
#!/bin/sh
# pgrep PATTERN: the pids whose command name matches (stand-in for procps' pgrep).
found=1
for d in /proc/[0-9]*; do
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  if echo "$comm" | grep -qE "$1"; then echo "${d#/proc/}"; found=0; fi
done
exit $found
SH
cat >bb/usr/bin/ipcs <<'SH'
#!/bin/sh
# ipcs -m: the System V shared memory segments of this IPC namespace (stand-in for util-linux' ipcs).
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size cpid lpid nattch uid rest; do
  printf '%-10s %-10s %-10s %-10s %-10s %-10s\n' "$key" "$shmid" "$uid" "$perms" "$size" "$nattch"
done
SH
chmod 755 bb/usr/bin/pgrep bb/usr/bin/ipcs

# An /etc layer with the accounts busybox's image has (www-data is uid 33).
mkdir -p users/etc
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >users/etc/passwd
printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >users/etc/group

# registry.k8s.io/e2e-test-images/busybox: the default image of every spec.
mk busybox --layer users
# nginx (pidof nginx, /var/run/nginx.pid, port 80) and hostnet-nginx (port 12003).
mkdir -p nginx/usr/sbin nginx/var/run nginx/usr/share/nginx/html
cc_static webserver nginx/usr/sbin/nginx
mk nginx --layer users --layer nginx --env PORT=80 --env PIDFILE=/var/run/nginx.pid \
  '--env=PROCTITLE=nginx: master process nginx -g daemon off;' --cmd nginx --cmd=-g '--cmd=daemon off;'
mk hostnet-nginx --layer users --layer nginx --env PORT=12003 --env PIDFILE=/var/run/nginx.pid \
  '--env=PROCTITLE=nginx: master process nginx -g daemon off;' --cmd nginx --cmd=-g '--cmd=daemon off;'
# httpd: port 80, its log carries "httpd -D FOREGROUND".
mkdir -p httpd/usr/local/bin
cc_static webserver httpd/usr/local/bin/httpd
mk httpd --layer users --layer httpd --env PORT=80 --cmd httpd --cmd=-D --cmd=FOREGROUND
# nonewprivs: a setuid-root program printing its effective uid.
mkdir -p nnp/usr/local/bin
cc_static nonewprivs nnp/usr/local/bin/nnp
chmod 4755 nnp/usr/local/bin/nnp
mk nonewprivs --layer users --layer nnp --entrypoint /usr/local/bin/nnp
# Images with a USER in their config.
mk user-uid --layer users --user 1002
mk user-username --layer users --user www-data
mk user-uid-group --layer users --user 1003:1004
mk user-username-group --layer users --user www-data:1004
# A user whose image /etc/group gives it a supplementary group.
mkdir -p predef/etc
cp users/etc/passwd users/etc/group predef/etc/
echo 'default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh' >>predef/etc/passwd
printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>predef/etc/group
mk predefined-group --layer predef --user 1000
# Images told apart by one file each (test-image-1, -2, -3), one for many tags, one for
# the reference kinds.
for n in 1 2 3 tags latest tag; do
  mkdir -p "img-$n"
  echo "test-image-$n" >"img-$n/test-image-$n"
  mk "test-image-$n" --layer users --layer "img-$n"
done
cd "$OUT"
rm -rf src
G=gcr.io/k8s-staging-cri-tools
E=registry.k8s.io/e2e-test-images
arch=$(go env GOARCH 2>/dev/null || echo amd64)
cat >images <<LIST
busybox $E/busybox:1.29-2
nginx $E/nginx:1.14-2
httpd $E/httpd:2.4.39-4
nonewprivs $E/nonewprivs:1.3
hostnet-nginx $G/hostnet-nginx-$arch:latest
user-uid $G/test-image-user-uid:latest
user-username $G/test-image-user-username:latest
user-uid-group $G/test-image-user-uid-group:latest
user-username-group $G/test-image-user-username-group:latest
predefined-group $G/test-image-predefined-group:latest
test-image-latest $G/test-image-latest:latest
test-image-tag $G/test-image-tag:test
test-image-tag $G/test-image-tag:all
test-image-1 $G/test-image-1:latest
test-image-2 $G/test-image-2:latest
test-image-3 $G/test-image-3:latest
test-image-tags $G/test-image-tags:1
test-image-tags $G/test-image-tags:2
test-image-tags $G/test-image-tags:3
LIST
echo "$stamp" >.stamp
