# Nextcloud: file sync, share and groupware. Apache image on :80 behind Traefik; PostgreSQL
# and Redis from the catalogue via Nomad service discovery; data on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "nextcloud" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 60

  group "nextcloud" {
    count = 2

    spread {
      attribute = "${node.unique.name}"
    }

    network {
      port "http" {
        to = 80
      }
    }

    volume "data" {
      type      = "host"
      source    = "nextcloud-data"
      read_only = false
    }

    service {
      name     = "nextcloud"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.nextcloud.rule=Host(`cloud.example.org`)",
        "traefik.http.routers.nextcloud.entrypoints=websecure",
        "traefik.http.routers.nextcloud.tls=true",
        "traefik.http.routers.nextcloud.tls.certresolver=internal",
      ]

      check {
        name     = "nextcloud-http"
        type     = "http"
        path     = "/status.php"
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

    task "nextcloud" {
      driver = "podman"

      config {
        image = "docker.io/library/nextcloud:29.0.4-apache@sha256:e0fde09c6ab94ae6a599275c1e129e065154e0b2b0db9abbb7079c227fabfd7c"
        ports = ["http"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/www/html"
      }

      env {
        POSTGRES_DB               = "nextcloud"
        POSTGRES_USER             = "nextcloud"
        NEXTCLOUD_TRUSTED_DOMAINS = "cloud.example.org"
        OVERWRITEPROTOCOL         = "https"
        APACHE_DISABLE_REWRITE_IP = "1"
        TRUSTED_PROXIES           = "10.0.0.0/8"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/nextcloud" }}
          POSTGRES_PASSWORD={{ .db_password }}
          NEXTCLOUD_ADMIN_USER={{ .admin_user }}
          NEXTCLOUD_ADMIN_PASSWORD={{ .admin_password }}
          {{ end }}
          POSTGRES_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}:{{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
          REDIS_HOST={{ range nomadService "redis" }}{{ .Address }}{{ end }}
          REDIS_HOST_PORT={{ range nomadService "redis" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1000
        memory     = 1024
        memory_max = 2048
      }
    }
  }
}
