"""Every write of the catalogue: one typed function per action.

The API, the portal, the admin and the CLI all call these, so each business
rule is written once. Each action runs in one transaction, locks what it
reads before changing it, and writes its AuditEvent in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.text import slugify

from catalogue.models import (
    SEMVER_RE,
    AuditEvent,
    Membership,
    Organization,
    Service,
    ServiceVersion,
    Subscription,
)
from catalogue.selectors import WRITE_ROLES, is_operator, organization_ids
from config.crypto import decrypt_json, encrypt_json
from config.errors import InvalidState, PermissionDenied, TooLarge, ValidationFailed
from crane.models import Target
from monitoring.models import AlertRule
from orchestrator import services as orchestrator_services
from orchestrator import tosca
from orchestrator.inputs import check_input_values
from orchestrator.limits import template_limits
from orchestrator.models import Deployment
from orchestrator.services import deployment_create, deployment_undeploy


@dataclass(frozen=True)
class Actor:
    """Who acts and from where; None user means the platform itself (a job, a migration)."""

    user: User | AnonymousUser | None
    ip: str | None = None

    @property
    def account(self) -> User | None:
        """The signed-in user, for the columns that record who did something."""
        return self.user if isinstance(self.user, User) else None

    @property
    def name(self) -> str:
        if self.user is None or not self.user.is_authenticated:
            return ""
        return str(self.user.get_username())

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        """The signed-in person of a Django or DRF request, and the address it came from."""
        return cls(user=request.user, ip=request.META.get("REMOTE_ADDR"))


SYSTEM = Actor(user=None)


def audit(*, actor: Actor, action: str, obj: Model, organization: Organization | None, **data: Any) -> AuditEvent:
    logging.getLogger("agora.audit").info(
        "%s: %s %s by %s",
        action,
        obj._meta.model_name,
        obj.pk,
        actor.name or "the platform",
        extra={
            "action": action,
            "actor": actor.name,
            "organization": organization.slug if organization else "",
            "deployment_id": obj.pk if isinstance(obj, Deployment) else getattr(obj, "deployment_id", None) or "",
        },
    )
    return AuditEvent.objects.create(
        actor=actor.account,
        actor_name=actor.name,
        organization=organization,
        action=action,
        object_type=obj._meta.model_name or "",
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        data=data,
        ip_address=actor.ip,
    )


# --- permissions -------------------------------------------------------------------------------


def _require_operator(actor: Actor, roles: tuple[str, ...] = WRITE_ROLES) -> None:
    """Operator actions follow the role in the operator organization, as everywhere else: a viewer reads."""
    if actor.user is None:  # the platform itself
        return
    if not is_operator(actor.user, roles=roles):
        if is_operator(actor.user):
            names = " or ".join(str(Membership.Role(r).label).lower() for r in roles)
            raise PermissionDenied(f"You need to be {names} of the operator organization to do this.")
        raise PermissionDenied("Only the platform's operators can do this.")


def _require_role(actor: Actor, organization: Organization, roles: tuple[str, ...] = WRITE_ROLES) -> None:
    # An operator acts in any organization with the role it holds in its own: a viewer there acts nowhere.
    if actor.user is None or is_operator(actor.user, roles=roles):
        return
    if organization.pk not in organization_ids(actor.user, roles=roles):
        names = " or ".join(str(Membership.Role(r).label).lower() for r in roles)
        raise PermissionDenied(f"You need to be {names} of {organization.name} to do this.")


# --- organizations and members -------------------------------------------------------------------


def organization_create(*, actor: Actor, name: str, kind: str, slug: str = "", email: str = "") -> Organization:
    _require_operator(actor, roles=(Membership.Role.ADMIN,))
    if kind not in Organization.Kind.values:
        raise ValidationFailed(f"Unknown organization kind {kind!r}; use one of {', '.join(Organization.Kind.values)}.")
    slug = slug or slugify(name)
    if not slug:
        raise ValidationFailed("The organization needs a name made of letters or digits.")
    with transaction.atomic():
        if Organization.objects.filter(slug=slug).exists():
            raise ValidationFailed(f"An organization with the slug {slug!r} exists already.", code="duplicate")
        organization = Organization.objects.create(name=name, slug=slug, kind=kind, email=email)
        audit(actor=actor, action="organization.created", obj=organization, organization=organization, kind=kind)
    return organization


def membership_add(*, actor: Actor, organization: Organization, username: str, role: str) -> Membership:
    """Adds the person with this username to the organization (or changes their role there).

    Only the organization's administrators get as far as the lookup, and a missing account and an
    inactive one answer the same sentence.
    """
    _require_role(actor, organization, roles=(Membership.Role.ADMIN,))
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationFailed(
            f"No account named {username!r} can be added; ask the person for the exact username they sign in with.",
            code="user",
        )
    return membership_set(actor=actor, organization=organization, user=user, role=role)


def membership_set(*, actor: Actor, organization: Organization, user: User, role: str) -> Membership:
    """Adds the user to the organization, or changes their role; an organization keeps an administrator."""
    _require_role(actor, organization, roles=(Membership.Role.ADMIN,))
    if role not in Membership.Role.values:
        raise ValidationFailed(f"Unknown role {role!r}; use one of {', '.join(Membership.Role.values)}.")
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            user=user, organization=organization, defaults={"role": role}
        )
        if not created and membership.role == Membership.Role.ADMIN and role != Membership.Role.ADMIN:
            admins = Membership.objects.select_for_update().filter(
                organization=organization, role=Membership.Role.ADMIN
            )
            if admins.count() == 1:
                raise InvalidState(
                    f"{user} is the last administrator of {organization.name}; appoint another before changing "
                    "their role."
                )
        if not created and membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        audit(
            actor=actor,
            action="membership.created" if created else "membership.changed",
            obj=membership,
            organization=organization,
            user=user.get_username(),
            role=role,
        )
    return membership


def membership_remove(*, actor: Actor, membership: Membership) -> None:
    organization = membership.organization
    _require_role(actor, organization, roles=(Membership.Role.ADMIN,))
    with transaction.atomic():
        admins = Membership.objects.select_for_update().filter(organization=organization, role=Membership.Role.ADMIN)
        if membership.role == Membership.Role.ADMIN and admins.count() == 1:
            raise InvalidState(
                f"{membership.user} is the last administrator of {organization.name}; appoint another first."
            )
        audit(
            actor=actor,
            action="membership.removed",
            obj=membership,
            organization=organization,
            user=membership.user.get_username(),
        )
        membership.delete()


# --- services ----------------------------------------------------------------------------------

SERVICE_EDITABLE_FIELDS = ("name", "summary", "description", "category", "tags")


def _clean_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValidationFailed("Tags must be a list of words.")
    cleaned = sorted({t.strip().lower() for t in tags if t.strip()})
    if any(len(t) > 50 for t in cleaned) or len(cleaned) > 20:
        raise ValidationFailed("Use at most 20 tags of at most 50 characters each.")
    return cleaned


def service_create(
    *,
    actor: Actor,
    publisher: Organization,
    name: str,
    slug: str = "",
    summary: str = "",
    description: str = "",
    category: str = "",
    tags: list[str] | None = None,
) -> Service:
    _require_role(actor, publisher)
    if publisher.kind != Organization.Kind.PUBLISHER:
        raise ValidationFailed(f"{publisher.name} is not a publisher organization, so it cannot publish services.")
    slug = slug or slugify(name)
    if not slug:
        raise ValidationFailed("The service needs a name made of letters or digits.")
    with transaction.atomic():
        if Service.objects.filter(slug=slug).exists():
            raise ValidationFailed(
                f"A service with the slug {slug!r} exists already; choose another.", code="duplicate"
            )
        service = Service.objects.create(
            publisher=publisher,
            slug=slug,
            name=name,
            summary=summary,
            description=description,
            category=category.strip().lower(),
            tags=_clean_tags(tags or []),
        )
        audit(actor=actor, action="service.created", obj=service, organization=publisher)
    return service


def service_update(*, actor: Actor, service: Service, **changes: Any) -> Service:
    _require_role(actor, service.publisher)
    unknown = set(changes) - set(SERVICE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if "tags" in changes:
        changes["tags"] = _clean_tags(changes["tags"])
    if "category" in changes:
        changes["category"] = str(changes["category"]).strip().lower()
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        if service.state == Service.State.RETIRED:
            raise InvalidState("This service is retired; it cannot be changed.")
        for field, value in changes.items():
            setattr(service, field, value)
        service.save()
        audit(
            actor=actor, action="service.updated", obj=service, organization=service.publisher, fields=sorted(changes)
        )
    return service


# --- versions ----------------------------------------------------------------------------------


def read_template_upload(upload: UploadedFile) -> bytes:
    """The uploaded template or CSAR, refused (413) past the template limit without reading it all."""
    limits = template_limits()
    if upload.size is not None and upload.size > limits.max_bytes:
        raise TooLarge(limits.too_large(upload.size))
    data = upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise TooLarge(limits.too_large(None))
    return data


def template_validate(*, filename: str, data: bytes) -> tosca.Report:
    """Validates a template or CSAR without storing anything; with the limits every later reader uses."""
    limits = template_limits()
    if len(data) > limits.max_bytes:
        raise TooLarge(limits.too_large(len(data)))
    return tosca.validate_bytes(data, filename=filename, limits=limits)


def _version_parts(version: str) -> tuple[int, int, int, bool]:
    match = SEMVER_RE.match(version)
    if not match:
        raise ValidationFailed(
            f"{version!r} is not a semantic version; use MAJOR.MINOR.PATCH such as 1.0.0 or 2.1.0-rc.1.",
            code="invalid_version",
        )
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) is None


def version_upload(
    *, actor: Actor, service: Service, version: str, filename: str, data: bytes, changelog: str = ""
) -> ServiceVersion:
    """Validates the template and stores it as a draft version; an invalid template is refused with its problems."""
    _require_role(actor, service.publisher)
    major, minor, patch, is_release = _version_parts(version)
    if service.state == Service.State.RETIRED:
        raise InvalidState("This service is retired; it takes no new versions.")
    if service.versions.filter(version=version).exists():
        raise ValidationFailed(
            f"Version {version} of {service.name} exists already; versions cannot be replaced.", code="duplicate"
        )
    report = template_validate(filename=filename, data=data)
    if not report.valid:
        raise ValidationFailed(
            "The template is not valid TOSCA; nothing was stored.",
            code="invalid_template",
            details=report.to_dict(),
        )
    sha256 = hashlib.sha256(data).hexdigest()
    safe_name = filename.replace("/", "_").replace("\\", "_")[-200:] or "template"
    try:
        with transaction.atomic():
            Service.objects.select_for_update().get(pk=service.pk)
            service_version = ServiceVersion(
                service=service,
                version=version,
                major=major,
                minor=minor,
                patch=patch,
                is_release=is_release,
                template_filename=safe_name,
                template_sha256=sha256,
                template_size=len(data),
                validation_report=report.to_dict(),
                inputs_schema=report.inputs_schema(),
                changelog=changelog,
                created_by=actor.account,
            )
            service_version.template.save(f"{service.pk}/{sha256}/{safe_name}", ContentFile(data), save=False)
            service_version.save()
            audit(
                actor=actor,
                action="version.uploaded",
                obj=service_version,
                organization=service.publisher,
                sha256=sha256,
                deployable=report.deployable,
            )
    except IntegrityError:
        raise ValidationFailed(f"Version {version} of {service.name} exists already.", code="duplicate") from None
    return service_version


def _transition(
    *,
    actor: Actor,
    version: ServiceVersion,
    allowed_from: tuple[str, ...],
    to: str,
    action: str,
    **data: Any,
) -> ServiceVersion:
    with transaction.atomic():
        locked = ServiceVersion.objects.select_for_update().select_related("service__publisher").get(pk=version.pk)
        if locked.state not in allowed_from:
            raise InvalidState(
                f"Version {locked.version} is {locked.get_state_display().lower()}; "
                f"it can be {action} only when {' or '.join(allowed_from)}."
            )
        now = timezone.now()
        locked.state = to
        update = ["state"]
        if to == ServiceVersion.State.SUBMITTED:
            locked.submitted_at = now
            update.append("submitted_at")
        if to in (ServiceVersion.State.PUBLISHED, ServiceVersion.State.REJECTED):
            locked.reviewed_at = now
            locked.reviewed_by = actor.account
            locked.review_reason = str(data.get("reason", ""))
            update += ["reviewed_at", "reviewed_by", "review_reason"]
        if to == ServiceVersion.State.PUBLISHED:
            locked.published_at = now
            update.append("published_at")
        locked.save(update_fields=update)
        _refresh_service_state(locked.service)
        audit(actor=actor, action=f"version.{to}", obj=locked, organization=locked.service.publisher, **data)
    return locked


def _refresh_service_state(service: Service) -> None:
    """A service is published while one of its versions is; retired ones stay retired."""
    if service.state == Service.State.RETIRED:
        return
    has_public = service.versions.filter(state=ServiceVersion.State.PUBLISHED).exists()
    state = Service.State.PUBLISHED if has_public else Service.State.DRAFT
    if service.state != state:
        service.state = state
        service.save(update_fields=["state", "updated_at"])


def version_submit(*, actor: Actor, version: ServiceVersion) -> ServiceVersion:
    _require_role(actor, version.service.publisher)
    if not version.is_deployable:
        raise InvalidState(
            "This version cannot be deployed by Agora (see its validation problems); upload a corrected version.",
            code="not_deployable",
        )
    return _transition(
        actor=actor,
        version=version,
        allowed_from=(ServiceVersion.State.DRAFT,),
        to=ServiceVersion.State.SUBMITTED,
        action="submitted",
    )


def version_approve(*, actor: Actor, version: ServiceVersion) -> ServiceVersion:
    _require_operator(actor)
    return _transition(
        actor=actor,
        version=version,
        allowed_from=(ServiceVersion.State.SUBMITTED,),
        to=ServiceVersion.State.PUBLISHED,
        action="approved",
    )


def version_reject(*, actor: Actor, version: ServiceVersion, reason: str) -> ServiceVersion:
    _require_operator(actor)
    if not reason.strip():
        raise ValidationFailed("Say why the version is rejected, so the publisher can fix it.", code="reason_required")
    return _transition(
        actor=actor,
        version=version,
        allowed_from=(ServiceVersion.State.SUBMITTED,),
        to=ServiceVersion.State.REJECTED,
        action="rejected",
        reason=reason.strip(),
    )


def version_deprecate(*, actor: Actor, version: ServiceVersion) -> ServiceVersion:
    _require_role(actor, version.service.publisher)
    return _transition(
        actor=actor,
        version=version,
        allowed_from=(ServiceVersion.State.PUBLISHED,),
        to=ServiceVersion.State.DEPRECATED,
        action="deprecated",
    )


def version_retire(*, actor: Actor, version: ServiceVersion) -> ServiceVersion:
    _require_role(actor, version.service.publisher)
    return _transition(
        actor=actor,
        version=version,
        allowed_from=(ServiceVersion.State.PUBLISHED, ServiceVersion.State.DEPRECATED),
        to=ServiceVersion.State.RETIRED,
        action="retired",
    )


# --- subscriptions -----------------------------------------------------------------------------


def _checked_inputs(
    version: ServiceVersion, inputs: dict[str, Any], refusal: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The values to deploy with, split into plain and secret ones; every violation refused at once."""
    schema: dict[str, dict[str, Any]] = version.inputs_schema or {}
    values, errors = check_input_values(schema, inputs)
    if errors:
        raise ValidationFailed(refusal, code="invalid_inputs", details={e.input: e.message for e in errors})
    secret_names = {n for n, spec in schema.items() if spec.get("secret")}
    plain = {n: v for n, v in values.items() if n not in secret_names}
    return values, plain, {n: v for n, v in values.items() if n in secret_names}


def subscription_create(
    *,
    actor: Actor,
    subscriber: Organization,
    version: ServiceVersion,
    name: str,
    inputs: dict[str, Any],
    target: Target | None = None,
) -> Subscription:
    """Subscribes the organization and starts deploying its own instance on the chosen target."""
    _require_role(actor, subscriber)
    if subscriber.kind != Organization.Kind.PUBLIC_ADMINISTRATION:
        raise ValidationFailed(f"{subscriber.name} is not a public administration, so it cannot subscribe.")
    if not isinstance(inputs, dict):
        raise ValidationFailed("Inputs must be a map of input names to values.")
    values, plain, secret = _checked_inputs(version, inputs, "Some inputs are not valid; nothing was created.")
    with transaction.atomic():
        locked = ServiceVersion.objects.select_for_update().select_related("service").get(pk=version.pk)
        if locked.state not in ServiceVersion.SUBSCRIBABLE_STATES or locked.service.state != Service.State.PUBLISHED:
            raise InvalidState(
                f"Version {locked.version} of {locked.service.name} is {locked.get_state_display().lower()}; "
                "only published versions can be subscribed."
            )
        if (
            Subscription.objects.filter(subscriber=subscriber, name=name)
            .exclude(state=Subscription.State.CANCELLED)
            .exists()
        ):
            raise ValidationFailed(f"{subscriber.name} already has a subscription named {name!r}.", code="duplicate")
        with locked.template.open("rb") as stored:
            template = stored.read()
        deployment = deployment_create(
            template=template,
            filename=locked.template_filename,
            inputs=values,
            target=target,
            name=f"{subscriber.slug}/{name}",
            owner=subscriber.slug,
        )
        subscription = Subscription.objects.create(
            subscriber=subscriber,
            version=locked,
            name=name,
            inputs=plain,
            secret_inputs=encrypt_json(secret) if secret else "",
            deployment=deployment,
            created_by=actor.account,
        )
        audit(
            actor=actor,
            action="subscription.created",
            obj=subscription,
            organization=subscriber,
            service=locked.service.slug,
            version=locked.version,
            deployment=deployment.pk,
            target=deployment.target.name,
        )
    return subscription


def subscription_cancel(*, actor: Actor, subscription: Subscription) -> Subscription:
    """Unsubscribes: the instance is removed (everything its deployment created), the subscription kept as history."""
    _require_role(actor, subscription.subscriber)
    with transaction.atomic():
        locked = (
            Subscription.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=subscription.pk)
        )
        if locked.state == Subscription.State.CANCELLED:
            raise InvalidState(f"The subscription {locked.name} is already cancelled.")
        if locked.deployment is not None:
            deployment_undeploy(deployment=locked.deployment)
        locked.state = Subscription.State.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.save(update_fields=["state", "cancelled_at", "updated_at"])
        audit(actor=actor, action="subscription.cancelled", obj=locked, organization=locked.subscriber)
    return locked


def subscription_upgrade(
    *, actor: Actor, subscription: Subscription, version: ServiceVersion, inputs: dict[str, Any] | None = None
) -> Subscription:
    """Moves the subscription to another published version of the same service, keeping the subscriber's values.

    Only what differs is changed on the running instance; a failed upgrade rolls back to the version it ran.
    """
    _require_role(actor, subscription.subscriber)
    if version.service_id != subscription.version.service_id:
        raise ValidationFailed("A subscription can only move to another version of the same service.")
    if inputs is not None and not isinstance(inputs, dict):
        raise ValidationFailed("Inputs must be a map of input names to values.")
    schema: dict[str, dict[str, Any]] = version.inputs_schema or {}
    kept = {**subscription.inputs, **(decrypt_json(subscription.secret_inputs) if subscription.secret_inputs else {})}
    merged = {k: v for k, v in kept.items() if k in schema} | (inputs or {})
    values, plain, secret = _checked_inputs(
        version, merged, "Some inputs are not valid for the new version; nothing was changed."
    )
    with transaction.atomic():
        locked = (
            Subscription.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=subscription.pk)
        )
        target_version = ServiceVersion.objects.select_for_update().select_related("service").get(pk=version.pk)
        if locked.state != Subscription.State.ACTIVE or locked.deployment is None:
            raise InvalidState(f"The subscription {locked.name} is cancelled; subscribe again instead.")
        if target_version.state not in ServiceVersion.SUBSCRIBABLE_STATES:
            raise InvalidState(f"Version {target_version.version} is not published; it cannot be upgraded to.")
        with target_version.template.open("rb") as stored:
            template = stored.read()
        orchestrator_services.deployment_upgrade(
            deployment=locked.deployment, template=template, filename=target_version.template_filename, inputs=values
        )
        previous = locked.version.version
        locked.version = target_version
        locked.inputs = plain
        locked.secret_inputs = encrypt_json(secret) if secret else ""
        locked.save(update_fields=["version", "inputs", "secret_inputs", "updated_at"])
        audit(
            actor=actor,
            action="subscription.upgraded",
            obj=locked,
            organization=locked.subscriber,
            from_version=previous,
            to_version=target_version.version,
        )
    return locked


def subscription_follow_rollback(*, deployment: Deployment, **_: Any) -> None:
    """A failed upgrade put the deployment back on what it ran: its subscription names that version and
    those values again (connected to orchestrator.signals.deployment_rolled_back)."""
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("version")
        .filter(deployment=deployment)
        .first()
    )
    if subscription is None:
        return
    ran = (
        ServiceVersion.objects.filter(
            service_id=subscription.version.service_id, template_sha256=deployment.template_sha256
        )
        .order_by("-created_at")
        .first()
    )
    failed = subscription.version.version
    subscription.version = ran or subscription.version
    subscription.inputs = deployment.inputs
    subscription.secret_inputs = deployment.secret_inputs
    subscription.save(update_fields=["version", "inputs", "secret_inputs", "updated_at"])
    audit(
        actor=SYSTEM,
        action="subscription.rolled_back",
        obj=subscription,
        organization=subscription.subscriber,
        from_version=failed,
        to_version=subscription.version.version,
    )


def _subscriber_of(actor: Actor, deployment: Deployment) -> None:
    """Deployment actions need write rights on the subscribing organization (operators may act on any)."""
    subscription = getattr(deployment, "subscription", None)
    if subscription is None:
        _require_operator(actor)
    else:
        _require_role(actor, subscription.subscriber)


def deployment_retry(*, actor: Actor, deployment: Deployment) -> Deployment:
    _subscriber_of(actor, deployment)
    with transaction.atomic():
        retried = orchestrator_services.deployment_retry(deployment)
        audit(actor=actor, action="deployment.retried", obj=retried, organization=_organization_of(retried))
    return retried


def deployment_redeploy(*, actor: Actor, deployment: Deployment) -> Deployment:
    """Runs the deployment's plan again (repairs drift, starts a failed deployment over)."""
    _subscriber_of(actor, deployment)
    subscription = getattr(deployment, "subscription", None)
    if subscription is not None and subscription.state == Subscription.State.CANCELLED:
        raise InvalidState(
            f"The subscription {subscription.name!r} is cancelled; subscribe again to get a new instance."
        )
    with transaction.atomic():
        redeployed = orchestrator_services.deployment_redeploy(deployment=deployment)
        audit(actor=actor, action="deployment.redeployed", obj=redeployed, organization=_organization_of(redeployed))
    return redeployed


def deployment_cancel(*, actor: Actor, deployment: Deployment) -> Deployment:
    _subscriber_of(actor, deployment)
    with transaction.atomic():
        cancelled = orchestrator_services.deployment_cancel(deployment)
        audit(actor=actor, action="deployment.cancelled", obj=cancelled, organization=_organization_of(cancelled))
    return cancelled


def deployment_remove(*, actor: Actor, deployment: Deployment) -> Deployment:
    """Undeploys; for a subscription's deployment this is unsubscribing."""
    subscription = getattr(deployment, "subscription", None)
    if subscription is not None and subscription.state != Subscription.State.CANCELLED:
        subscription_cancel(actor=actor, subscription=subscription)
        deployment.refresh_from_db()
        return deployment
    _subscriber_of(actor, deployment)
    with transaction.atomic():
        removed = deployment_undeploy(deployment=deployment)
        audit(actor=actor, action="deployment.undeploying", obj=removed, organization=_organization_of(removed))
    return removed


def alert_rule_set(
    *,
    actor: Actor,
    deployment: Deployment,
    kind: str,
    threshold: float | None = None,
    duration_seconds: int | None = None,
    enabled: bool = True,
) -> AlertRule:
    """Sets the deployment's own rule of this kind (it replaces the platform's default for that kind)."""
    _subscriber_of(actor, deployment)
    if kind not in AlertRule.Kind.values:
        raise ValidationFailed(f"kind must be one of {', '.join(AlertRule.Kind.values)}, not {kind!r}.", code="kind")
    if kind in (AlertRule.Kind.CPU, AlertRule.Kind.MEMORY) and threshold is None and enabled:
        raise ValidationFailed(f"A {kind} rule needs a threshold (percent).", code="threshold")
    if threshold is not None and not 0 < threshold <= 100_000:
        raise ValidationFailed("threshold must be above 0 (a percent, or a number of restarts).", code="threshold")
    if duration_seconds is not None and not 0 <= duration_seconds <= 7 * 86400:
        raise ValidationFailed("duration_seconds must be between 0 and 604800 (a week).", code="duration")
    with transaction.atomic():
        rule, created = AlertRule.objects.select_for_update().get_or_create(deployment=deployment, kind=kind)
        rule.threshold = threshold
        if duration_seconds is not None:
            rule.duration_seconds = duration_seconds
        rule.enabled = enabled
        rule.save()
        audit(
            actor=actor,
            action="alert_rule.created" if created else "alert_rule.changed",
            obj=rule,
            organization=_organization_of(deployment),
            deployment=deployment.pk,
            kind=kind,
            threshold=threshold,
            duration_seconds=rule.duration_seconds,
            enabled=enabled,
        )
    return rule


def _organization_of(deployment: Deployment) -> Organization | None:
    subscription = getattr(deployment, "subscription", None)
    return subscription.subscriber if subscription is not None else None
