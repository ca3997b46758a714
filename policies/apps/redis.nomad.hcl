# Redis: the catalogue's cache and queue (Nextcloud file locking, Zammad), found through Nomad
# service discovery (service "redis"). One instance, append-only file on a host volume; no
# Traefik route.
# Image digests are placeholders: see README.md in this directory.
job "redis" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 70

  group "redis" {
    count = 1

    network {
      port "db" {
        to = 6379
      }
    }

    volume "data" {
      type      = "host"
      source    = "redis-data"
      read_only = false
    }

    service {
      name     = "redis"
      port     = "db"
      provider = "nomad"

      check {
        name     = "redis-tcp"
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

    task "redis" {
      driver = "podman"

      config {
        image = "docker.io/library/redis:7.2.5-bookworm@sha256:30deb4122590dda6c5a3955e7830c1f1732200e29ce74b45ddffa91fcd3a35d0"
        ports = ["db"]
        args = [
          "redis-server",
          "--appendonly",
          "yes",
          "--protected-mode",
          "yes",
          "--requirepass",
          "${REDIS_PASSWORD}",
        ]
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/redis" }}
          REDIS_PASSWORD={{ .password }}
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 300
        memory     = 256
      }
    }
  }
}
