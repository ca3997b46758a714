# Mattermost: team chat. Team edition on :8065 behind Traefik (websockets included),
# PostgreSQL from the catalogue, files on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "mattermost" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "mattermost" {
    count = 1

    network {
      port "http" {
        to = 8065
      }
    }

    volume "data" {
      type      = "host"
      source    = "mattermost-data"
      read_only = false
    }

    service {
      name     = "mattermost"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.mattermost.rule=Host(`chat.example.org`)",
        "traefik.http.routers.mattermost.entrypoints=websecure",
        "traefik.http.routers.mattermost.tls=true",
        "traefik.http.routers.mattermost.tls.certresolver=internal",
      ]

      check {
        name     = "mattermost-http"
        type     = "http"
        path     = "/api/v4/system/ping"
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

    task "mattermost" {
      driver = "podman"

      config {
        image = "docker.io/mattermost/mattermost-team-edition:9.10.1@sha256:38cfa534e3c006607bb1e1d504d8ba0a25480254867fd233783d4a49688de813"
        ports = ["http"]
      }

      volume_mount {
        volume      = "data"
        destination = "/mattermost/data"
      }

      env {
        MM_SQLSETTINGS_DRIVERNAME        = "postgres"
        MM_SERVICESETTINGS_SITEURL       = "https://chat.example.org"
        MM_SERVICESETTINGS_LISTENADDRESS = ":8065"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/mattermost" }}
          MM_SQLSETTINGS_DATASOURCE=postgres://mattermost:{{ .db_password }}@{{ range nomadService "postgresql" }}{{ .Address }}{{ end }}:{{ range nomadService "postgresql" }}{{ .Port }}{{ end }}/mattermost?sslmode=require&connect_timeout=10
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1000
        memory     = 1536
        memory_max = 2048
      }
    }
  }
}
