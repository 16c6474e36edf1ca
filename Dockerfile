# Multi-stage build of a static orbitd, run as a non-root user.
# (Not built in CI here: this machine has no Docker engine.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/orbitd ./cmd/orbitd \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/orbitctl ./cmd/orbitctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orbitd /out/orbitctl /usr/local/bin/
USER nonroot:nonroot
ENV ORBIT_DATA_DIR=/data ORBIT_HTTP_ADDR=0.0.0.0:8080 ORBIT_RAFT_ADDR=0.0.0.0:7000
VOLUME ["/data"]
EXPOSE 8080 7000
ENTRYPOINT ["/usr/local/bin/orbitd"]
