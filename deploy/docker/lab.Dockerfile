# Helper image of the compose lab (docker-compose.yml): LAN client, DSL/LTE access routers (tbf
# shaping) and the internet server. iproute2 (ip, tc), curl, procps; Node.js from the base image
# runs the lab's address set-up (deploy/compose/lab-net.mjs) and the file server.
ARG BASE_IMAGE=docker.io/library/node:20-bookworm-slim
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive && apt-get update \
 && apt-get install -y --no-install-recommends iproute2 curl procps \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
CMD ["sleep", "infinity"]
