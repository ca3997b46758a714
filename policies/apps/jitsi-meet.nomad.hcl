# Jitsi Meet: video conferencing. One group with the four components (web, prosody, jicofo,
# jvb) sharing the allocation network; web on :80 behind Traefik, media on UDP 10000 (static,
# opened by the nftables baseline for media nodes only).
# Image digests are placeholders: see README.md in this directory.
job "jitsi-meet" {
  datacenters = ["dc1"]
  type        = "service"
  priority    = 50

  group "jitsi" {
    count = 1

    network {
      port "http" {
        to = 80
      }
      port "xmpp" {
        to = 5222
      }
      port "bosh" {
        to = 5280
      }
      port "jvbmedia" {
        static = 10000
        to     = 10000
      }
    }

    service {
      name     = "jitsi-web"
      port     = "http"
      provider = "nomad"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.jitsi.rule=Host(`meet.example.org`)",
        "traefik.http.routers.jitsi.entrypoints=websecure",
        "traefik.http.routers.jitsi.tls=true",
        "traefik.http.routers.jitsi.tls.certresolver=internal",
      ]

      check {
        name     = "jitsi-web-http"
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "3s"
      }
    }

    service {
      name     = "jitsi-prosody"
      port     = "bosh"
      provider = "nomad"

      check {
        name     = "jitsi-prosody-tcp"
        type     = "tcp"
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

    task "prosody" {
      driver = "podman"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        image = "docker.io/jitsi/prosody:stable-9584@sha256:7eaaceeb85024390b61badb300021dd441d812583f78c95ddb26e8428e17ed44"
        ports = ["xmpp", "bosh"]
      }

      env {
        XMPP_DOMAIN              = "meet.jitsi"
        XMPP_AUTH_DOMAIN         = "auth.meet.jitsi"
        XMPP_INTERNAL_MUC_DOMAIN = "internal-muc.meet.jitsi"
        ENABLE_AUTH              = "1"
        AUTH_TYPE                = "jwt"
        JWT_APP_ID               = "jitsi"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/jitsi-meet" }}
          JICOFO_AUTH_PASSWORD={{ .jicofo_password }}
          JVB_AUTH_PASSWORD={{ .jvb_password }}
          JWT_APP_SECRET={{ .jwt_secret }}
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 300
        memory     = 256
      }
    }

    task "web" {
      driver = "podman"

      config {
        image = "docker.io/jitsi/web:stable-9584@sha256:7f5f95cf3d84720b42342e5b230394c1a51e3709f1e07aedc420a0acf2cc650c"
        ports = ["http"]
      }

      env {
        PUBLIC_URL         = "https://meet.example.org"
        XMPP_BOSH_URL_BASE = "http://127.0.0.1:5280"
        ENABLE_AUTH        = "1"
        DISABLE_HTTPS      = "1"
      }

      kill_timeout = "30s"

      resources {
        cpu        = 300
        memory     = 256
      }
    }

    task "jicofo" {
      driver = "podman"

      config {
        image = "docker.io/jitsi/jicofo:stable-9584@sha256:0d1b7de82da52749728835110a9cfb9b89a3a059a3bc72228f8a0d96057e012a"
      }

      env {
        XMPP_SERVER              = "127.0.0.1"
        XMPP_DOMAIN              = "meet.jitsi"
        XMPP_AUTH_DOMAIN         = "auth.meet.jitsi"
        XMPP_INTERNAL_MUC_DOMAIN = "internal-muc.meet.jitsi"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/jitsi-meet" }}
          JICOFO_AUTH_PASSWORD={{ .jicofo_password }}
          {{ end }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 300
        memory     = 512
      }
    }

    task "jvb" {
      driver = "podman"

      config {
        image = "docker.io/jitsi/jvb:stable-9584@sha256:9418a203d6d0a2940ee8e1053ffe3e9ebe82892f9166a16696d7f111ee22dcb4"
        ports = ["jvbmedia"]
      }

      env {
        XMPP_SERVER              = "127.0.0.1"
        XMPP_DOMAIN              = "meet.jitsi"
        XMPP_AUTH_DOMAIN         = "auth.meet.jitsi"
        XMPP_INTERNAL_MUC_DOMAIN = "internal-muc.meet.jitsi"
        JVB_PORT                 = "10000"
      }

      # Secrets from Nomad Variables (only this job's workload identity reads
      # nomad/jobs/<job>), service addresses from Nomad's own service discovery.
      template {
        destination = "secrets/app.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/jitsi-meet" }}
          JVB_AUTH_PASSWORD={{ .jvb_password }}
          {{ end }}
          JVB_ADVERTISE_IPS={{ env "attr.unique.network.ip-address" }}
        EOT
      }

      kill_timeout = "30s"

      resources {
        cpu        = 1000
        memory     = 1024
      }
    }
  }
}
