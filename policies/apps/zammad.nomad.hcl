# Zammad: helpdesk and ticketing. The rails server, websocket server, scheduler and nginx
# front of the one Zammad image in one group; nginx on :8080 behind Traefik; PostgreSQL and
# Redis from the catalogue; storage on a host volume.
# Image digests are placeholders: see README.md in this directory.
job "zammad" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "zammad" {
    count = 1

    network {
      port "http" {
        to = 8080
      }
      port "rails" {
        to = 3000
      }
      port "websocket" {
        to = 6042
      }
    }

    volume "storage" {
      type      = "host"
      source    = "zammad-storage"
      read_only = false
    }

    service {
      name     = "zammad"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.zammad.rule=Host(`support.example.org`)",
        "traefik.http.routers.zammad.entrypoints=websecure",
        "traefik.http.routers.zammad.tls=true",
        "traefik.http.routers.zammad.tls.certresolver=internal",
      ]

      check {
        name     = "zammad-http"
        type     = "http"
        path     = "/api/v1/getting_started"
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

    task "init" {
      driver = "podman"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image = "ghcr.io/zammad/zammad:6.4.1@sha256:73799ade223dd9744f0fffd05ae14e339409f05c5e5013e6433a7434fe235f4e"
        command = "zammad-init"
      }

      volume_mount {
        volume      = "storage"
        destination = "/opt/zammad/storage"
      }

      env {
        POSTGRESQL_DB         = "zammad_production"
        POSTGRESQL_USER       = "zammad"
        REDIS_URL             = "redis://redis.service:6379"
        ELASTICSEARCH_ENABLED = "false"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/zammad" }}
          POSTGRESQL_PASS={{ .db_password }}
          {{ end }}
          POSTGRESQL_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRESQL_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
          REDIS_URL=redis://{{ range nomadService "redis" }}{{ .Address }}{{ end }}:{{ range nomadService "redis" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 500
        memory     = 1024
      }
    }

    task "railsserver" {
      driver = "podman"

      config {
        image = "ghcr.io/zammad/zammad:6.4.1@sha256:73799ade223dd9744f0fffd05ae14e339409f05c5e5013e6433a7434fe235f4e"
        ports = ["rails"]
        command = "zammad-railsserver"
      }

      volume_mount {
        volume      = "storage"
        destination = "/opt/zammad/storage"
      }

      env {
        POSTGRESQL_DB         = "zammad_production"
        POSTGRESQL_USER       = "zammad"
        REDIS_URL             = "redis://redis.service:6379"
        ELASTICSEARCH_ENABLED = "false"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/zammad" }}
          POSTGRESQL_PASS={{ .db_password }}
          {{ end }}
          POSTGRESQL_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRESQL_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
          REDIS_URL=redis://{{ range nomadService "redis" }}{{ .Address }}{{ end }}:{{ range nomadService "redis" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1000
        memory     = 1536
      }
    }

    task "websocket" {
      driver = "podman"

      config {
        image = "ghcr.io/zammad/zammad:6.4.1@sha256:73799ade223dd9744f0fffd05ae14e339409f05c5e5013e6433a7434fe235f4e"
        ports = ["websocket"]
        command = "zammad-websocket"
      }

      env {
        POSTGRESQL_DB         = "zammad_production"
        POSTGRESQL_USER       = "zammad"
        REDIS_URL             = "redis://redis.service:6379"
        ELASTICSEARCH_ENABLED = "false"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/zammad" }}
          POSTGRESQL_PASS={{ .db_password }}
          {{ end }}
          POSTGRESQL_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRESQL_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
          REDIS_URL=redis://{{ range nomadService "redis" }}{{ .Address }}{{ end }}:{{ range nomadService "redis" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 300
        memory     = 512
      }
    }

    task "scheduler" {
      driver = "podman"

      config {
        image = "ghcr.io/zammad/zammad:6.4.1@sha256:73799ade223dd9744f0fffd05ae14e339409f05c5e5013e6433a7434fe235f4e"
        command = "zammad-scheduler"
      }

      volume_mount {
        volume      = "storage"
        destination = "/opt/zammad/storage"
      }

      env {
        POSTGRESQL_DB         = "zammad_production"
        POSTGRESQL_USER       = "zammad"
        REDIS_URL             = "redis://redis.service:6379"
        ELASTICSEARCH_ENABLED = "false"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/zammad" }}
          POSTGRESQL_PASS={{ .db_password }}
          {{ end }}
          POSTGRESQL_HOST={{ range nomadService "postgresql" }}{{ .Address }}{{ end }}
          POSTGRESQL_PORT={{ range nomadService "postgresql" }}{{ .Port }}{{ end }}
          REDIS_URL=redis://{{ range nomadService "redis" }}{{ .Address }}{{ end }}:{{ range nomadService "redis" }}{{ .Port }}{{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 500
        memory     = 1024
      }
    }

    task "nginx" {
      driver = "podman"

      config {
        image = "ghcr.io/zammad/zammad:6.4.1@sha256:73799ade223dd9744f0fffd05ae14e339409f05c5e5013e6433a7434fe235f4e"
        ports = ["http"]
        command = "zammad-nginx"
      }

      env {
        ZAMMAD_RAILSSERVER_HOST = "127.0.0.1"
        ZAMMAD_WEBSOCKET_HOST   = "127.0.0.1"
        NGINX_SERVER_SCHEME     = "https"
      }

      kill_timeout = "30s"

      resources {
        cpu        = 200
        memory     = 128
      }
    }
  }
}
