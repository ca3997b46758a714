# SuiteCRM: customer relationship management. Bitnami image on :8080 behind Traefik; its
# MariaDB-compatible database settings come from Nomad Variables; data on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "suitecrm" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "suitecrm" {
    count = 1

    network {
      port "http" {
        to = 8080
      }
    }

    volume "data" {
      type      = "host"
      source    = "suitecrm-data"
      read_only = false
    }

    service {
      name     = "suitecrm"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.suitecrm.rule=Host(`crm.example.org`)",
        "traefik.http.routers.suitecrm.entrypoints=websecure",
        "traefik.http.routers.suitecrm.tls=true",
        "traefik.http.routers.suitecrm.tls.certresolver=internal",
      ]

      check {
        name     = "suitecrm-http"
        type     = "http"
        path     = "/"
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

    task "suitecrm" {
      driver = "podman"

      config {
        image = "docker.io/bitnami/suitecrm:8.6.2@sha256:26fd8eb12ce3a040cd727a5e616548ebdba780ecf64c838c740ae7e5159b9870"
        ports = ["http"]
      }

      volume_mount {
        volume      = "data"
        destination = "/bitnami/suitecrm"
      }

      env {
        SUITECRM_HOST          = "crm.example.org"
        SUITECRM_DATABASE_NAME = "suitecrm"
        SUITECRM_DATABASE_USER = "suitecrm"
        SUITECRM_ENABLE_HTTPS  = "no"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/suitecrm" }}
          SUITECRM_DATABASE_HOST={{ .db_host }}
          SUITECRM_DATABASE_PASSWORD={{ .db_password }}
          SUITECRM_PASSWORD={{ .admin_password }}
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 800
        memory     = 768
      }
    }
  }
}
