# Odoo: ERP and CRM suite. Official image on :8069 (longpolling on :8072) behind Traefik;
# PostgreSQL from the catalogue; filestore on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "odoo" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "odoo" {
    count = 1

    network {
      port "http" {
        to = 8069
      }
      port "longpolling" {
        to = 8072
      }
    }

    volume "filestore" {
      type      = "host"
      source    = "odoo-filestore"
      read_only = false
    }

    service {
      name     = "odoo"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.odoo.rule=Host(`erp.example.org`)",
        "traefik.http.routers.odoo.entrypoints=websecure",
        "traefik.http.routers.odoo.tls=true",
        "traefik.http.routers.odoo.tls.certresolver=internal",
      ]

      check {
        name     = "odoo-http"
        type     = "http"
        path     = "/web/health"
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

    task "odoo" {
      driver = "podman"

      config {
        image = "docker.io/library/odoo:17.0@sha256:9f68b5089d545bb09daa47125465667c1dd3d52c1178594d0ea01924bfe0de25"
        ports = ["http", "longpolling"]
        args = [
          "--proxy-mode",
          "--workers=4",
          "--max-cron-threads=1",
        ]
      }

      volume_mount {
        volume      = "filestore"
        destination = "/var/lib/odoo"
      }

      env {
        USER = "odoo"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/odoo" }}
          PASSWORD={{ .db_password }}
          {{ end }}
          HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1500
        memory     = 2048
        memory_max = 3072
      }
    }
  }
}
