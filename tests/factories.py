"""factory_boy factories for the catalogue's models."""

from __future__ import annotations

import factory
from django.contrib.auth.models import User

from catalogue.models import Membership, Organization, Service

DEMO_PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(DEMO_PASSWORD)


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    kind = Organization.Kind.PUBLIC_ADMINISTRATION


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.EDITOR


class ServiceFactory(factory.django.DjangoModelFactory[Service]):
    class Meta:
        model = Service

    publisher = factory.SubFactory(OrganizationFactory, kind=Organization.Kind.PUBLISHER)
    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")
    summary = "A service"
