def join_host_port(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
