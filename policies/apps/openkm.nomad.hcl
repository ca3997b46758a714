# OpenKM: document management. Community edition (Tomcat) on :8080 behind Traefik; repository
# on a host volume; database settings from Nomad Variables.
# Image digests are placeholders: see README.md in this directory.
job "openkm" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "openkm" {
    count = 1

    network {
      port "http" {
        to = 8080
      }
    }

    volume "repository" {
      type      = "host"
      source    = "openkm-repository"
      read_only = false
    }

    service {
      name     = "openkm"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.openkm.rule=Host(`docs.example.org`)",
        "traefik.http.routers.openkm.entrypoints=websecure",
        "traefik.http.routers.openkm.tls=true",
        "traefik.http.routers.openkm.tls.certresolver=internal",
      ]

      check {
        name     = "openkm-http"
        type     = "http"
        path     = "/OpenKM/"
        interval = "15s"
        timeout  = "5s"
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
      min_healthy_time  = "60s"
      healthy_deadline  = "10m"
      progress_deadline = "20m"
      auto_revert       = true
    }

    migrate {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "60s"
      healthy_deadline = "10m"
    }

    task "openkm" {
      driver = "podman"

      config {
        image = "docker.io/openkm/openkm-ce:6.3.12@sha256:6822ef57e0b86c64c27a38f258f62d06de86a2f1f207c9011ec60cfceebd67fc"
        ports = ["http"]
      }

      volume_mount {
        volume      = "repository"
        destination = "/opt/tomcat/repository"
      }

      env {
        JAVA_OPTS = "-Xms512m -Xmx1536m"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/openkm" }}
          OPENKM_DB_PASSWORD={{ .db_password }}
          {{ end }}
          OPENKM_DB_URL=jdbc:postgresql://{{ range nomadService "postgresql" }}{{ .Address }}{{ end }}:{{ range nomadService "postgresql" }}{{ .Port }}{{ end }}/okmdb
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1000
        memory     = 2048
      }
    }
  }
}
