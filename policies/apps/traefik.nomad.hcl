# Traefik: the platform ingress. Two instances with static ports 80/443 on trusted edge nodes;
# routes come from the Nomad provider reading the services of this catalogue (their traefik.*
# tags); the Nomad token from Nomad Variables.
# Image digests are placeholders: see README.md in this directory.
job "traefik" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 90

  group "traefik" {
    count = 2

    spread {
      attribute = "${node.unique.name}"
    }

    network {
      port "web" {
        static = 80
        to     = 80
      }
      port "websecure" {
        static = 443
        to     = 443
      }
      port "admin" {
        to = 8080
      }
    }

    service {
      name     = "traefik"
      port     = "admin"
      provider = "nomad"

      check {
        name     = "traefik-http"
        type     = "http"
        path     = "/ping"
        interval = "10s"
        timeout  = "3s"
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    update {
      max_parallel      = 1
      health_check      = "checks"
      min_healthy_time  = "20s"
      healthy_deadline  = "5m"
      progress_deadline = "10m"
      auto_revert       = true
    }

    migrate {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "20s"
      healthy_deadline = "5m"
    }

    task "traefik" {
      driver = "podman"

      config {
        image = "docker.io/library/traefik:v3.1.2@sha256:426e046007568a2803c9002a27e250d52062ec2b6371aca001f1461f2068ef2e"
        ports = ["web", "websecure", "admin"]
        args = [
          "--entrypoints.web.address=:80",
          "--entrypoints.web.http.redirections.entrypoint.to=websecure",
          "--entrypoints.websecure.address=:443",
          "--entrypoints.traefik.address=:8080",
          "--ping=true",
          "--api.dashboard=true",
          "--providers.nomad=true",
          "--providers.nomad.exposedByDefault=false",
          "--providers.nomad.endpoint.address=https://nomad.service.internal:4646",
          "--certificatesresolvers.internal.acme.caserver=https://acme.internal.example.org/directory",
          "--certificatesresolvers.internal.acme.storage=/local/acme.json",
          "--certificatesresolvers.internal.acme.tlschallenge=true",
        ]
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/traefik" }}
          NOMAD_TOKEN={{ .nomad_token }}
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 500
        memory     = 256
      }
    }
  }
}
