"""No single zone to lose (every subnet a worker runs in reaches the internet through a NAT gateway in
its own zone, and S3 and DynamoDB through gateway endpoints), and the GPU AMI's NVIDIA driver runs the
worker image's CUDA (the dated table in docs/deploy.md, the one place those versions are written)."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import REPO, one, resources_of

DEPLOY_DOC = REPO / "docs" / "deploy.md"
DOCKERFILE = REPO / "worker" / "transcription" / "Dockerfile"


def zone(template: dict, subnet_ref: dict):
    return template["Resources"][subnet_ref["Ref"]]["Properties"]["AvailabilityZone"]


def worker_subnets(template: dict) -> list[dict]:
    """The subnets of every ECS service and of the GPU Auto Scaling group (each must list the same)."""
    lists = [
        s["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
        for s in resources_of(template, "AWS::ECS::Service").values()
    ]
    lists.append(one(template, "AWS::AutoScaling::AutoScalingGroup")["Properties"]["VPCZoneIdentifier"])
    assert all(subnets == lists[0] for subnets in lists), lists
    return lists[0]


def route_table_of(template: dict, subnet_ref: dict) -> str:
    (table,) = [
        a["Properties"]["RouteTableId"]["Ref"]
        for a in resources_of(template, "AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"] == subnet_ref
    ]
    return table


def test_workers_span_two_zones_each_with_its_own_nat_gateway(synth):
    template = synth.template("Workers")
    subnets = worker_subnets(template)
    zones = [zone(template, s) for s in subnets]
    assert len(subnets) >= 2 and len({str(z) for z in zones}) == len(zones), zones
    routes = resources_of(template, "AWS::EC2::Route").values()
    nats = set()
    for subnet in subnets:
        table = route_table_of(template, subnet)
        (default,) = [
            r["Properties"]
            for r in routes
            if r["Properties"]["RouteTableId"] == {"Ref": table}
            and r["Properties"]["DestinationCidrBlock"] == "0.0.0.0/0"
        ]
        nat = default["NatGatewayId"]["Ref"]  # a private subnet: out through NAT, never an internet gateway
        nat_subnet = template["Resources"][nat]["Properties"]["SubnetId"]
        assert zone(template, nat_subnet) == zone(template, subnet), f"{subnet}: its NAT gateway is in another zone"
        nats.add(nat)
    assert len(nats) == len(subnets), "one NAT gateway per zone: losing one zone must not cut the others off"


def test_s3_and_dynamodb_through_gateway_endpoints_in_every_worker_zone(synth):
    template = synth.template("Workers")
    tables = {route_table_of(template, s) for s in worker_subnets(template)}
    endpoints = resources_of(template, "AWS::EC2::VPCEndpoint").values()
    services = {}
    for e in endpoints:
        name = e["Properties"]["ServiceName"]["Fn::Join"][1][-1]
        services[name] = {t["Ref"] for t in e["Properties"]["RouteTableIds"]}
        assert e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
    assert set(services) == {".s3", ".dynamodb"}
    for name, routed in services.items():
        assert tables <= routed, f"{name}: not routed from {tables - routed}"


# ---- the GPU AMI's driver and the image's CUDA ----------------------------------------------------------


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first table after `heading` in docs/deploy.md, cells stripped of backticks."""
    text = DEPLOY_DOC.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header row


def test_the_launch_template_uses_the_documented_ami(synth):
    ((parameter, driver, checked, source),) = doc_table("#### The GPU AMI's NVIDIA driver")
    template = synth.template("Workers")
    data = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert template["Parameters"][data["ImageId"]["Ref"]]["Default"] == parameter
    assert re.fullmatch(r"\d+\.\d+\.\d+", driver) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", checked)
    assert source.startswith("https://github.com/aws/amazon-ecs-ami/releases/")


def test_the_amis_driver_runs_the_worker_images_cuda():
    ((_, driver, _, _),) = doc_table("#### The GPU AMI's NVIDIA driver")
    minimum = {int(major): (int(branch), source) for major, branch, source in doc_table("#### CUDA and the driver")}
    assert all(src.startswith("https://docs.nvidia.com/") for _, src in minimum.values())
    image = re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.(\d+)", Path(DOCKERFILE).read_text(), re.M)
    assert image, f"{DOCKERFILE}: no ARG CUDA_IMAGE=nvidia/cuda:X.Y line"
    cuda_major = int(image.group(1))
    assert cuda_major in minimum, f"CUDA {cuda_major}: not in the table; look it up and add it"
    branch = int(driver.split(".")[0])
    assert branch >= minimum[cuda_major][0], (
        f"the AMI's driver {driver} is older than CUDA {cuda_major} needs ({minimum[cuda_major][0]})"
    )
