package let portholeVersion = "0.1.0"
