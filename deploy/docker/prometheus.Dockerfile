# Prometheus from Debian's package, for machines that cannot pull docker.io/prom/prometheus (the
# container test builds it; docker-compose.yml takes it through PROMETHEUS_IMAGE). Runs as the
# package's unprivileged user, like the official image, and reads /etc/prometheus/prometheus.yml.
ARG BASE_IMAGE=docker.io/library/node:20-bookworm-slim
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive && apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && rm -rf /usr/share/prometheus/consoles /usr/share/prometheus/console_libraries
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
