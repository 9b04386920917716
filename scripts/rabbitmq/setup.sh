#!/usr/bin/env bash
# RabbitMQ for clapas's partitioned mode (issue 15), on a Debian 12 machine, as root. Idempotent: run it again
# after changing a password or the partition count (the count itself must never change for a city).
#
#   CLAPAS_PASSWORD=… CHIRPSTACK_PASSWORD=… scripts/rabbitmq/setup.sh
#
# Variables (defaults): VHOST (clapas), CLAPAS_USER (clapas), CHIRPSTACK_USER (chirpstack), PREFIX (clapas),
# STREAM_MAX_AGE (7D: how long a worker may be down without losing events), MANAGEMENT (1: enable the
# management plugin, http://127.0.0.1:15672, for monitoring), DROP_GUEST (0; 1: delete the guest user).
#
# What it does:
#   1. installs rabbitmq-server (Debian 12: 3.10.8; streams need ≥ 3.9, nothing else beyond AMQP 0-9-1 is used)
#   2. enables rabbitmq_management (optional; no other plugin is needed: streams are read over AMQP 0-9-1)
#   3. a virtual host for the city, and two users:
#        chirpstack — may only publish to amq.topic (ChirpStack's AMQP integration declares nothing)
#        clapas     — the router, workers and bridge: declare and use <PREFIX>.* and bind to amq.topic
#   4. a policy on the streams (retention) and on the ingress quorum queue (its size while the router is down)
#   5. prints the lines for chirpstack.toml
# The exchange, the streams and the ingress queue are declared by `clapas route` / `clapas worker` at start.
set -euo pipefail

VHOST=${VHOST:-clapas}
CLAPAS_USER=${CLAPAS_USER:-clapas}
CHIRPSTACK_USER=${CHIRPSTACK_USER:-chirpstack}
PREFIX=${PREFIX:-clapas}
STREAM_MAX_AGE=${STREAM_MAX_AGE:-7D}
MANAGEMENT=${MANAGEMENT:-1}
: "${CLAPAS_PASSWORD:?set CLAPAS_PASSWORD}"
: "${CHIRPSTACK_PASSWORD:?set CHIRPSTACK_PASSWORD}"

if ! command -v rabbitmqctl >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server
fi
systemctl enable --now rabbitmq-server 2>/dev/null || true
rabbitmqctl await_startup

if [[ $MANAGEMENT == 1 ]]; then
    rabbitmq-plugins enable rabbitmq_management
fi

rabbitmqctl list_vhosts --quiet | grep -qx "$VHOST" || rabbitmqctl add_vhost "$VHOST"

user() {  # user NAME PASSWORD: create or set the password
    if rabbitmqctl list_users --quiet | cut -f1 | grep -qx "$1"; then
        rabbitmqctl change_password "$1" "$2"
    else
        rabbitmqctl add_user "$1" "$2"
    fi
}
user "$CHIRPSTACK_USER" "$CHIRPSTACK_PASSWORD"
user "$CLAPAS_USER" "$CLAPAS_PASSWORD"
# permissions: configure, write, read (regular expressions on exchange and queue names)
rabbitmqctl set_permissions -p "$VHOST" "$CHIRPSTACK_USER" '^$' '^amq\.topic$' '^$'
rabbitmqctl set_permissions -p "$VHOST" "$CLAPAS_USER" "^${PREFIX}\\..*" "^${PREFIX}\\..*" \
    "^(${PREFIX}\\..*|amq\\.topic)$"
# the guest user (guest/guest) only works from localhost; DROP_GUEST=1 removes it
if [[ ${DROP_GUEST:-0} == 1 ]] && rabbitmqctl list_users --quiet | cut -f1 | grep -qx guest; then
    rabbitmqctl delete_user guest
fi

# retention of the partition streams (also given at declaration; the policy lets it change without redeclaring)
rabbitmqctl set_policy -p "$VHOST" --apply-to queues "${PREFIX}-streams" "^${PREFIX}\\.p[0-9]{3}$" \
    "{\"max-age\": \"${STREAM_MAX_AGE}\"}"
# the ingress queue holds what ChirpStack sent while no router runs: bound it (then the oldest are dropped)
rabbitmqctl set_policy -p "$VHOST" --apply-to queues "${PREFIX}-ingress" "^${PREFIX}\\.ingress$" \
    '{"max-length-bytes": 4294967296}'

host=$(hostname -f 2>/dev/null || hostname)
cat <<TOML

RabbitMQ is ready (virtual host "$VHOST"). In chirpstack.toml:

  [integration]
  enabled = ["amqp"]

  [integration.amqp]
  url = "amqp://${CHIRPSTACK_USER}:${CHIRPSTACK_PASSWORD}@${host}:5672/${VHOST}"
  json = true
  event_routing_key = "application.{{application_id}}.device.{{dev_eui}}.event.{{event}}"

For clapas (route, worker, bridge):

  CLAPAS_PARTITIONED_BROKER_URL=amqp://${CLAPAS_USER}:…@${host}:5672/${VHOST}
  CLAPAS_PARTITIONED_PREFIX=${PREFIX}
TOML
