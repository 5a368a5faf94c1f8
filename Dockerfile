# Multi-stage build on Debian bookworm with the same install script as CI.
# Release step (run once per deploy, before the new image takes traffic):
#   docker run --rm -e DATABASE_URL=... nmc:latest nmc migrate up
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh build
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNMC_WERROR=ON \
 && cmake --build build -j"$(nproc)" --target nmc nmc-fakes

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh runtime && apt-get install -y -qq --no-install-recommends curl tzdata \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin nmc
COPY --from=build /src/build/nmc /src/build/nmc-fakes /usr/local/bin/
COPY --from=build /src/migrations /usr/local/share/nmc/migrations
ENV PORT=8080 NMC_MIGRATIONS_DIR=/usr/local/share/nmc/migrations
USER nmc
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" || exit 1
ENTRYPOINT ["nmc"]
CMD ["serve", "--role", "all"]
