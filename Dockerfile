# The pgharbor container image for builders with ordinary registry access
# (Docker Hub, apt.postgresql.org). scripts/image.sh builds the equivalent
# image without them (mmdebstrap + umoci, PostgreSQL 15 and 16 only); both:
#   Debian bookworm, ca-certificates, PostgreSQL client tools in
#   /usr/lib/postgresql/MAJOR/bin (pgharbor picks the newest pg_dump whose
#   major is at least the server's), user pgharbor (10001:10001), home
#   /home/pgharbor, entrypoint /usr/local/bin/pgharbor, no compiler, no secrets.
# This one carries PostgreSQL's own packages of the client majors 13–17, so
# it backs up servers up to 17.
#
#   docker build -t pgharbor .
#   docker run --rm pgharbor --version
#
# The build context includes .git (see .dockerignore) so that
# `pgharbor --version` names the commit; without it, it says `unknown`.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist -p pgharbor \
 && install -m 0755 target/dist/pgharbor /usr/local/bin/pgharbor

FROM debian:bookworm-slim
ARG PG_MAJORS="13 14 15 16 17"
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends $(for major in $PG_MAJORS; do echo "postgresql-client-$major"; done); \
    apt-get purge -y --auto-remove curl; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*; \
    groupadd --gid 10001 pgharbor; \
    useradd --uid 10001 --gid 10001 --home-dir /home/pgharbor --create-home --shell /usr/sbin/nologin pgharbor; \
    chmod 0700 /home/pgharbor
COPY --from=build /usr/local/bin/pgharbor /usr/local/bin/pgharbor
COPY LICENSE /usr/share/doc/pgharbor/LICENSE
USER 10001:10001
WORKDIR /home/pgharbor
LABEL org.opencontainers.image.title=pgharbor \
      org.opencontainers.image.licenses=Apache-2.0
ENTRYPOINT ["/usr/local/bin/pgharbor"]
CMD ["--help"]
