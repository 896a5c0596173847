# Builds increment-node in the Swift 6.3 image and runs it in a slim image as a non-root user.
# Debian 12 for both stages: the runtime stage then has exactly the C libraries the build linked
# against. The images are build arguments so that a machine without a registry can substitute
# local ones (scripts/standin-images.sh, for the compose system test); the defaults are the
# official images.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
WORKDIR /build
# Resolve dependencies in their own layer, so source edits do not fetch them again; exactly the
# versions pinned in Package.resolved.
COPY Package.swift Package.resolved ./
RUN swift package resolve --force-resolved-versions
# The test targets' folders too: SwiftPM checks every target's sources exist, even for one product.
COPY Sources ./Sources
COPY Tests ./Tests
# release, as shipped; the compose test's bounded mode builds debug, in half the time.
ARG SWIFT_CONFIGURATION=release
RUN swift build -c ${SWIFT_CONFIGURATION} --product increment-node --static-swift-stdlib --force-resolved-versions \
    && mkdir -p /staging \
    && cp .build/${SWIFT_CONFIGURATION}/increment-node /staging/ \
    # The SQL migrations, the OpenAPI description and the docs page are bundled resources.
    && cp -R .build/${SWIFT_CONFIGURATION}/*.resources /staging/ \
    # A statically linked backtracer: the runtime image has no Swift runtime for the dynamic one.
    && cp /usr/libexec/swift/linux/swift-backtrace-static /staging/

FROM ${RUNTIME_IMAGE}
# Unpinned on purpose: security updates of these base packages should land on rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin increment \
    && mkdir -p /var/lib/increment/spill \
    && chown 10001 /var/lib/increment/spill
COPY --from=build /staging /app
USER 10001
ENV HOST=0.0.0.0 PORT=8080 FLUSH_SPILL_DIR=/var/lib/increment/spill
# Two malloc arenas: with glibc's default (8 per core) a node's RSS climbed for minutes under
# reads; two kept it flat (README, the soak row).
ENV MALLOC_ARENA_MAX=2
# A crash prints a symbolicated backtrace of every thread to the log, then exits.
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/app/swift-backtrace-static
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=2s CMD ["curl", "-fs", "http://127.0.0.1:8080/healthz"]
# SIGTERM drains and flushes; give it time (docker stop -t, stop_grace_period in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/increment-node"]
