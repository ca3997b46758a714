# GLPI: IT service management and inventory. Image on :80 behind Traefik; database settings
# from Nomad Variables; files on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "glpi" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "glpi" {
    count = 1

    network {
      port "http" {
        to = 80
      }
    }

    volume "files" {
      type      = "host"
      source    = "glpi-files"
      read_only = false
    }

    service {
      name     = "glpi"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.glpi.rule=Host(`itsm.example.org`)",
        "traefik.http.routers.glpi.entrypoints=websecure",
        "traefik.http.routers.glpi.tls=true",
        "traefik.http.routers.glpi.tls.certresolver=internal",
      ]

      check {
        name     = "glpi-http"
        type     = "http"
        path     = "/index.php"
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

    task "glpi" {
      driver = "podman"

      config {
        image = "docker.io/glpi/glpi:10.0.16@sha256:b303cabee0263aad2d3eb2a21629fd87f1727087182bcba02c2c30d03b8e6bc5"
        ports = ["http"]
      }

      volume_mount {
        volume      = "files"
        destination = "/var/glpi"
      }

      env {
        GLPI_DB_NAME = "glpi"
        GLPI_DB_USER = "glpi"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/glpi" }}
          GLPI_DB_HOST={{ .db_host }}
          GLPI_DB_PASSWORD={{ .db_password }}
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
