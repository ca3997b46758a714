# Keycloak: identity and access management (OIDC/SAML) for the platform. Quarkus distribution
# on :8080 behind Traefik, health endpoint on the management port :9000, PostgreSQL from the
# catalogue.
# Image digests are placeholders: see README.md in this directory.
job "keycloak" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 80

  group "keycloak" {
    count = 2

    spread {
      attribute = "${node.unique.name}"
    }

    network {
      port "http" {
        to = 8080
      }
      port "management" {
        to = 9000
      }
    }

    service {
      name     = "keycloak"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.keycloak.rule=Host(`id.example.org`)",
        "traefik.http.routers.keycloak.entrypoints=websecure",
        "traefik.http.routers.keycloak.tls=true",
        "traefik.http.routers.keycloak.tls.certresolver=internal",
      ]

      check {
        name     = "keycloak-http"
        type     = "http"
        path     = "/health/ready"
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

    task "keycloak" {
      driver = "podman"

      config {
        image = "quay.io/keycloak/keycloak:25.0.2@sha256:c8763df3f620e1fbe86193abf00604df779f3b30966a88c0df66f00dbc0787d4"
        ports = ["http", "management"]
        args = [
          "start",
          "--optimized",
          "--http-enabled=true",
          "--proxy-headers=xforwarded",
          "--health-enabled=true",
          "--metrics-enabled=true",
        ]
      }

      env {
        KC_DB          = "postgres"
        KC_DB_USERNAME = "keycloak"
        KC_HOSTNAME    = "https://id.example.org"
        KC_CACHE       = "ispn"
        KC_CACHE_STACK = "kubernetes"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/keycloak" }}
          KC_DB_PASSWORD={{ .db_password }}
          KEYCLOAK_ADMIN=admin
          KEYCLOAK_ADMIN_PASSWORD={{ .admin_password }}
          {{ end }}
          KC_DB_URL=jdbc:postgresql://{{ range nomadService "postgresql" }}{{ .Address }}{{ end }}:{{ range nomadService "postgresql" }}{{ .Port }}{{ end }}/keycloak
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1000
        memory     = 1024
        memory_max = 2048
      }
    }
  }
}
