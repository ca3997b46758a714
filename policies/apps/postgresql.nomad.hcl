# PostgreSQL: the catalogue's relational database, found by the apps through Nomad service
# discovery (service "postgresql"). One instance on a host volume; no Traefik route.
# Image digests are placeholders: see README.md in this directory.
job "postgresql" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 80

  group "postgresql" {
    count = 1

    network {
      port "db" {
        to = 5432
      }
    }

    volume "data" {
      type      = "host"
      source    = "postgresql-data"
      read_only = false
    }

    service {
      name     = "postgresql"
      port     = "db"
      provider = "nomad"

      check {
        name     = "postgresql-tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
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
      min_healthy_time  = "30s"
      healthy_deadline  = "5m"
      progress_deadline = "10m"
      auto_revert       = true
    }

    migrate {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "30s"
      healthy_deadline = "5m"
    }

    task "postgresql" {
      driver = "podman"

      config {
        image = "docker.io/library/postgres:16.4-bookworm@sha256:6b7b4ead57f717e51b342ecdacc60ff206bb1dec0b939f8c0b8565f590899474"
        ports = ["db"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/postgresql/data"
      }

      env {
        PGDATA               = "/var/lib/postgresql/data/pgdata"
        POSTGRES_USER        = "postgres"
        POSTGRES_INITDB_ARGS = "--data-checksums"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/postgresql" }}
          POSTGRES_PASSWORD={{ .superuser_password }}
          {{ end }}
        EOT
      }

      kill_timeout = "60s"

      resources {
        cpu        = 1000
        memory     = 2048
      }
    }
  }
}
