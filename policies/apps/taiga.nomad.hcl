# Taiga: agile project management. Backend (Django), async worker, events and protected-media
# services and the Angular front in one group; front on :80 behind Traefik; PostgreSQL from
# the catalogue, RabbitMQ settings from Nomad Variables; media on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "taiga" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "taiga" {
    count = 1

    network {
      port "http" {
        to = 80
      }
      port "back" {
        to = 8000
      }
      port "events" {
        to = 8888
      }
      port "protected" {
        to = 8003
      }
    }

    volume "media" {
      type      = "host"
      source    = "taiga-media"
      read_only = false
    }

    service {
      name     = "taiga"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.taiga.rule=Host(`projects.example.org`)",
        "traefik.http.routers.taiga.entrypoints=websecure",
        "traefik.http.routers.taiga.tls=true",
        "traefik.http.routers.taiga.tls.certresolver=internal",
      ]

      check {
        name     = "taiga-http"
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "3s"
      }
    }

    service {
      name     = "taiga-back"
      port     = "back"
      provider = "nomad"

      check {
        name     = "taiga-back-http"
        type     = "http"
        path     = "/api/v1/"
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

    task "back" {
      driver = "podman"

      config {
        image = "docker.io/taigaio/taiga-back:6.8.1@sha256:2b161081d26f29fd8e0d458fc2ad501b7f6d206097b8b7a8229f3165df064a42"
        ports = ["back"]
      }

      volume_mount {
        volume      = "media"
        destination = "/taiga-back/media"
      }

      env {
        POSTGRES_DB        = "taiga"
        POSTGRES_USER      = "taiga"
        TAIGA_SITES_SCHEME = "https"
        TAIGA_SITES_DOMAIN = "projects.example.org"
        TAIGA_SUBPATH      = ""
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/taiga" }}
          POSTGRES_PASSWORD={{ .db_password }}
          TAIGA_SECRET_KEY={{ .secret_key }}
          RABBITMQ_PASS={{ .rabbitmq_password }}
          {{ end }}
          POSTGRES_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRES_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 800
        memory     = 768
      }
    }

    task "async" {
      driver = "podman"

      config {
        image = "docker.io/taigaio/taiga-back:6.8.1@sha256:2b161081d26f29fd8e0d458fc2ad501b7f6d206097b8b7a8229f3165df064a42"
        command = "/taiga-back/docker/async_entrypoint.sh"
      }

      volume_mount {
        volume      = "media"
        destination = "/taiga-back/media"
      }

      env {
        POSTGRES_DB        = "taiga"
        POSTGRES_USER      = "taiga"
        TAIGA_SITES_SCHEME = "https"
        TAIGA_SITES_DOMAIN = "projects.example.org"
        TAIGA_SUBPATH      = ""
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/taiga" }}
          POSTGRES_PASSWORD={{ .db_password }}
          TAIGA_SECRET_KEY={{ .secret_key }}
          RABBITMQ_PASS={{ .rabbitmq_password }}
          {{ end }}
          POSTGRES_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRES_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 400
        memory     = 512
      }
    }

    task "events" {
      driver = "podman"

      config {
        image = "docker.io/taigaio/taiga-events:6.8.0@sha256:204ccc65d50ed9e88dc8cc59c22861038477f1406588e305a5d79912795e137a"
        ports = ["events"]
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/taiga" }}
          POSTGRES_PASSWORD={{ .db_password }}
          TAIGA_SECRET_KEY={{ .secret_key }}
          RABBITMQ_PASS={{ .rabbitmq_password }}
          {{ end }}
          POSTGRES_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRES_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 200
        memory     = 256
      }
    }

    task "protected" {
      driver = "podman"

      config {
        image = "docker.io/taigaio/taiga-protected:6.8.0@sha256:6ad29d3cdc992a55f14c9272b230cfb60097b9a25ffa75667981a4c178c8de2c"
        ports = ["protected"]
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/taiga" }}
          POSTGRES_PASSWORD={{ .db_password }}
          TAIGA_SECRET_KEY={{ .secret_key }}
          RABBITMQ_PASS={{ .rabbitmq_password }}
          {{ end }}
          POSTGRES_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRES_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 100
        memory     = 128
      }
    }

    task "front" {
      driver = "podman"

      config {
        image = "docker.io/taigaio/taiga-front:6.8.1@sha256:efcccbc271cebce5001deb7bb0708cc73d0241596b952c1d0c44ec8a5fe36247"
        ports = ["http"]
      }

      env {
        TAIGA_URL            = "https://projects.example.org"
        TAIGA_WEBSOCKETS_URL = "wss://projects.example.org"
      }

      kill_timeout = "30s"

      resources {
        cpu        = 200
        memory     = 128
      }
    }
  }
}
