#!/usr/bin/env bash
# Builds the image and migrates a VM between two ferryd containers, then between the two daemons of
# deploy/compose/compose.yaml. Needs a running Docker engine, docker-compose (1.29) or 'docker
# compose', and the jar ('mvn -q -DskipTests package'). The containers use the host's network and
# listen on its loopback only, on free ports above 20000; everything the script starts it removes.
#
#   deploy/container/try-containers.sh
#
# FERRY_BASE_IMAGE: the image's base (the Dockerfile's default if unset), e.g. local/debian-jre:17
# where no registry is reachable.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=ferry/ferryd:try
base=${FERRY_BASE_IMAGE:-}
work=$(mktemp -d)
names=(ferry-try-source ferry-try-destination ferry-try-unreadable)
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "try-containers: neither 'docker compose' nor docker-compose is installed" >&2
    exit 1
fi
compose+=(-p ferry-try -f deploy/compose/compose.yaml)

cleanup() {
    docker rm -f "${names[@]}" >/dev/null 2>&1 || true
    FERRY_TOKEN_FILE=$work/token "${compose[@]}" down --timeout 30 >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

[ -f orchestrator/target/ferryd.jar ] || { echo "try-containers: build the jar first: mvn -q -DskipTests package" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "try-containers: no Docker engine answers" >&2; exit 1; }

# Sets each named variable to a free TCP port on 127.0.0.1 above 20000 (nothing answers a connect
# to it), no two the same.
used=" "
free_ports() {
    local name port
    for name in "$@"; do
        while :; do
            port=$((20000 + RANDOM % 40000))
            if [[ $used != *" $port "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                break
            fi
        done
        used+="$port "
        printf -v "$name" '%s' "$port"
    done
}

# Waits until a container prints ferryd's listening line, and shows it.
await_listening() {
    for _ in $(seq 1 120); do
        if docker logs "$1" 2>/dev/null | grep -m1 '^ferryd listening'; then
            return 0
        fi
        if [ "$(docker inspect -f '{{.State.Running}}' "$1")" != true ]; then
            docker logs "$1" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "try-containers: $1 did not start listening" >&2
    return 1
}

await_healthy() {
    for _ in $(seq 1 120); do
        status=$(docker inspect -f '{{.State.Health.Status}}' "$1")
        if [ "$status" = healthy ]; then
            echo "$1: $status"
            return 0
        fi
        sleep 0.5
    done
    echo "try-containers: $1 is $status" >&2
    return 1
}

say "build $image${base:+ from $base}"
build_args=()
[ -n "$base" ] && build_args+=(--build-arg "BASE_IMAGE=$base")
docker build --network host "${build_args[@]}" -f deploy/container/Dockerfile -t "$image" . >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
docker image inspect -f 'image {{index .RepoTags 0}}: user {{.Config.User}}, {{len .RootFS.Layers}} layers, {{.Size}} bytes' "$image"

# The daemons run as uid 10001: the token must be readable by it (a file secret is a bind mount that
# keeps the host's owner and mode).
head -c 24 /dev/urandom | base64 >"$work/token"
chown 10001:10001 "$work/token"
chmod 0400 "$work/token"
cat >"$work/vm.json" <<'EOF'
{"id": "vm1", "memoryBytes": 268435456, "vcpus": 2, "initialMemory": "random",
 "workload": {"dirtyBytesPerSecond": 16777216, "p2pOpsPerSecond": 100, "seed": 7},
 "devices": [{"id": "nic0", "kind": "nic"}, {"id": "gpu0", "kind": "gpu", "memoryBytes": 16777216}, {"id": "serial0", "kind": "serial"}]}
EOF
chmod 0644 "$work/vm.json"

say "two containers on the host's loopback"
free_ports src_http src_mig dst_http dst_mig
run() {
    local name=$1 http=$2 mig=$3
    docker run -d --name "$name" --network host --health-interval 2s \
        -e "FERRY_HEALTH_ADDRESS=127.0.0.1:$http" \
        -v "$work/token:/run/secrets/ferry_token:ro" -v "$work/vm.json:/try/vm.json:ro" \
        "$image" --http "127.0.0.1:$http" --migration "127.0.0.1:$mig" --token-file /run/secrets/ferry_token >/dev/null
}
run ferry-try-source "$src_http" "$src_mig"
run ferry-try-destination "$dst_http" "$dst_mig"
await_listening ferry-try-source
await_listening ferry-try-destination
await_healthy ferry-try-source
await_healthy ferry-try-destination

# The client inside the image, with the image's JAVA_OPTS for the daemon set: ferryctl does not take them.
ctl() {
    local container=$1 api=$2
    shift 2
    docker exec "$container" /opt/ferry/bin/ferryctl --api "$api" --token-file /run/secrets/ferry_token "$@"
}
ctl ferry-try-source "127.0.0.1:$src_http" vm create --file /try/vm.json >/dev/null
say "migrate vm1 from the source container to the destination container"
ctl ferry-try-source "127.0.0.1:$src_http" migrate vm1 --to "127.0.0.1:$dst_mig" --watch --verify --channels 2 2>&1 \
    | tr '\r' '\n' | grep -v '^$' | tail -n 4
ctl ferry-try-source "127.0.0.1:$src_http" migration list
ctl ferry-try-destination "127.0.0.1:$dst_http" vm list

say "SIGTERM: both daemons stop and exit 0"
docker stop --time 90 ferry-try-source ferry-try-destination >/dev/null
for name in ferry-try-source ferry-try-destination; do
    code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
    echo "$name exited $code"
    [ "$code" = 0 ]
done

say "a token file only root can read: the daemon refuses to start (exit 2)"
cp "$work/token" "$work/token-root"
chown 0:0 "$work/token-root"
chmod 0600 "$work/token-root"
free_ports bad_http bad_mig
docker run --name ferry-try-unreadable --network host -v "$work/token-root:/run/secrets/ferry_token:ro" "$image" \
    --http "127.0.0.1:$bad_http" --migration "127.0.0.1:$bad_mig" --token-file /run/secrets/ferry_token 2>&1 | tail -n 1 || true
code=$(docker inspect -f '{{.State.ExitCode}}' ferry-try-unreadable)
echo "exit $code"
[ "$code" = 2 ]

say "the compose file: ${compose[*]}"
export FERRY_IMAGE=$image FERRY_TOKEN_FILE=$work/token
[ -n "$base" ] && export FERRY_BASE_IMAGE=$base
free_ports c_src_http c_src_mig c_dst_http c_dst_mig
export FERRY_SOURCE_HTTP=127.0.0.1:$c_src_http FERRY_SOURCE_MIGRATION=127.0.0.1:$c_src_mig
export FERRY_DESTINATION_HTTP=127.0.0.1:$c_dst_http FERRY_DESTINATION_MIGRATION=127.0.0.1:$c_dst_mig
"${compose[@]}" build >"$work/compose-build.log" 2>&1 || { cat "$work/compose-build.log" >&2; exit 1; }
"${compose[@]}" up -d 2>&1
source_container=$("${compose[@]}" ps -q source)
destination_container=$("${compose[@]}" ps -q destination)
await_listening "$source_container"
await_listening "$destination_container"
docker cp "$work/vm.json" "$source_container:/tmp/vm.json"
ctl "$source_container" "127.0.0.1:$c_src_http" vm create --file /tmp/vm.json >/dev/null
say "migrate vm1 between the compose file's daemons"
ctl "$source_container" "127.0.0.1:$c_src_http" migrate vm1 --to "127.0.0.1:$c_dst_mig" --watch 2>&1 \
    | tr '\r' '\n' | grep -v '^$' | tail -n 4
ctl "$destination_container" "127.0.0.1:$c_dst_http" vm list
"${compose[@]}" stop --timeout 90 2>&1
for container in "$source_container" "$destination_container"; do
    code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
    echo "$(docker inspect -f '{{.Name}}' "$container") exited $code"
    [ "$code" = 0 ]
done
say "all done"
