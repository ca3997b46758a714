# Snipe-IT: IT asset management. Official image on :80 behind Traefik; database settings and
# APP_KEY from Nomad Variables; uploads on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "snipe-it" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "snipeit" {
    count = 1

    network {
      port "http" {
        to = 80
      }
    }

    volume "data" {
      type      = "host"
      source    = "snipe-it-data"
      read_only = false
    }

    service {
      name     = "snipe-it"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.snipeit.rule=Host(`assets.example.org`)",
        "traefik.http.routers.snipeit.entrypoints=websecure",
        "traefik.http.routers.snipeit.tls=true",
        "traefik.http.routers.snipeit.tls.certresolver=internal",
      ]

      check {
        name     = "snipe-it-http"
        type     = "http"
        path     = "/health"
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

    task "snipe-it" {
      driver = "podman"

      config {
        image = "docker.io/snipe/snipe-it:v7.0.11@sha256:cf6a0fd8c3700fcfeab6e0b5f525b94de773347de330f6242ac18a1669ab6427"
        ports = ["http"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/snipeit"
      }

      env {
        APP_URL             = "https://assets.example.org"
        APP_ENV             = "production"
        APP_TRUSTED_PROXIES = "10.0.0.0/8"
        DB_CONNECTION       = "mysql"
        DB_DATABASE         = "snipeit"
        DB_USERNAME         = "snipeit"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/snipe-it" }}
          APP_KEY={{ .app_key }}
          DB_HOST={{ .db_host }}
          DB_PASSWORD={{ .db_password }}
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 500
        memory     = 512
      }
    }
  }
}
