# Mautic: marketing automation. Apache image on :80 behind Traefik, a cron sidecar for segment
# and campaign jobs; PostgreSQL-compatible settings come from Nomad Variables, media on a host
# volume.
# Image digests are placeholders: see README.md in this directory.
job "mautic" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "mautic" {
    count = 1

    network {
      port "http" {
        to = 80
      }
    }

    volume "media" {
      type      = "host"
      source    = "mautic-media"
      read_only = false
    }

    service {
      name     = "mautic"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.mautic.rule=Host(`marketing.example.org`)",
        "traefik.http.routers.mautic.entrypoints=websecure",
        "traefik.http.routers.mautic.tls=true",
        "traefik.http.routers.mautic.tls.certresolver=internal",
      ]

      check {
        name     = "mautic-http"
        type     = "http"
        path     = "/s/login"
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

    task "mautic" {
      driver = "podman"

      config {
        image = "docker.io/mautic/mautic:5.1.0-apache@sha256:884b2938bed45217a3652ada5fb327cf23994f278aab3481c5cf8e299c7b02e7"
        ports = ["http"]
      }

      volume_mount {
        volume      = "media"
        destination = "/var/www/html/docroot/media"
      }

      env {
        DOCKER_MAUTIC_ROLE = "mautic_web"
        MAUTIC_DB_NAME     = "mautic"
        MAUTIC_DB_USER     = "mautic"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/mautic" }}
          MAUTIC_DB_PASSWORD={{ .db_password }}
          {{ end }}
          MAUTIC_DB_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          MAUTIC_DB_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 800
        memory     = 768
      }
    }

    task "cron" {
      driver = "podman"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image = "docker.io/mautic/mautic:5.1.0-apache@sha256:884b2938bed45217a3652ada5fb327cf23994f278aab3481c5cf8e299c7b02e7"
      }

      volume_mount {
        volume      = "media"
        destination = "/var/www/html/docroot/media"
      }

      env {
        DOCKER_MAUTIC_ROLE = "mautic_cron"
        MAUTIC_DB_NAME     = "mautic"
        MAUTIC_DB_USER     = "mautic"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/mautic" }}
          MAUTIC_DB_PASSWORD={{ .db_password }}
          {{ end }}
          MAUTIC_DB_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          MAUTIC_DB_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 300
        memory     = 384
      }
    }
  }
}
