"""Network plumbing with pyroute2 (no `ip` shell-outs): netns, interfaces, frames, veth labs."""
from nf.net import netns
from nf.net.frames import Capture, capture, send
from nf.net.iface import (Interface, InterfaceError, ethtool_stats, get_features, ifindex,
                          list_interfaces, resolve, set_features)
from nf.net.lab import Host, HostSpec, Lab, LabSpec, host_mac, port_mac
from nf.net.netns import NetnsError

__all__ = ["netns", "Capture", "capture", "send", "Interface", "InterfaceError", "ethtool_stats",
           "get_features", "ifindex", "list_interfaces", "resolve", "set_features", "Host",
           "HostSpec", "Lab", "LabSpec", "host_mac", "port_mac", "NetnsError"]
