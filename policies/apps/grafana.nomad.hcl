# Grafana: dashboards for the platform and for Bulwark trust state. Official OSS image on
# :3000 behind Traefik; its database on PostgreSQL from the catalogue.
# Image digests are placeholders: see README.md in this directory.
job "grafana" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "grafana" {
    count = 1

    network {
      port "http" {
        to = 3000
      }
    }

    volume "data" {
      type      = "host"
      source    = "grafana-data"
      read_only = false
    }

    service {
      name     = "grafana"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.grafana.rule=Host(`grafana.example.org`)",
        "traefik.http.routers.grafana.entrypoints=websecure",
        "traefik.http.routers.grafana.tls=true",
        "traefik.http.routers.grafana.tls.certresolver=internal",
      ]

      check {
        name     = "grafana-http"
        type     = "http"
        path     = "/api/health"
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

    task "grafana" {
      driver = "podman"

      config {
        image = "docker.io/grafana/grafana-oss:11.1.4@sha256:4a24f1729168e546fa6a72dbd658cff08d49157ec357d726c9acf80ff6f4a3b3"
        ports = ["http"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/grafana"
      }

      env {
        GF_SERVER_ROOT_URL             = "https://grafana.example.org"
        GF_DATABASE_TYPE               = "postgres"
        GF_DATABASE_NAME               = "grafana"
        GF_DATABASE_USER               = "grafana"
        GF_DATABASE_SSL_MODE           = "require"
        GF_ANALYTICS_REPORTING_ENABLED = "false"
        GF_ANALYTICS_CHECK_FOR_UPDATES = "false"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/grafana" }}
          GF_DATABASE_PASSWORD={{ .db_password }}
          GF_SECURITY_ADMIN_PASSWORD={{ .admin_password }}
          {{ end }}
          GF_DATABASE_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}:{{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
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
