"""Alerts: rules under ``/api/v1/namespaces/{namespace}/alerts``, judged by the maintenance
lease holder and delivered to their webhook (see `taskwheel.alerts`); their deliveries,
and a test delivery on demand. Defining, removing and testing a rule is an admin's (a
rule carries the secret that signs its deliveries); reading is anyone's of the
namespace."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from taskwheel.alerts import AlertDelivery, AlertKind, AlertRule, new_alert_rule
from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import Answer
from taskwheel.server.models import Request as Body

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/alerts", tags=["alerts"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Admin = Annotated[Access, Depends(namespace_access(Role.ADMIN))]


class AlertIn(Body):
    kind: AlertKind = Field(description="What the rule watches.")
    url: str = Field(description="Where firings and resolutions are POSTed (http or https).")
    task: str | None = Field(None, description="failure_rate: the task.")
    queue: str | None = Field(None, description="oldest_ready, no_worker: the queue "
                                                "(dlq_growing: only its jobs).")
    priority: int | None = Field(None, description="oldest_ready: only this priority.")
    schedule: str | None = Field(None, description="schedule_missed: only this schedule.")
    threshold: float | str | None = Field(
        None, description="failure_rate: a percent; dlq_growing: a count; oldest_ready, "
                          "schedule_missed: seconds or a duration ('5m').")
    window: float | str = Field("10m", description="failure_rate, dlq_growing: how far "
                                                   "back to look.")
    min_attempts: int = Field(5, description="failure_rate: fewer attempts never fire.")
    secret: str | None = Field(None, description="16 to 200 characters; a random one when "
                                                 "null (answered once, here).")


class AlertOut(Answer):
    namespace: str
    name: str
    kind: AlertKind
    url: str
    condition: str
    state: str
    firing: int = Field(description="How many times it fired.")
    value: float | None = Field(description="The last value it was judged on.")
    details: dict[str, Any] = Field(description="task, queue, priority, schedule, "
                                                "threshold, window, min_attempts")

    @classmethod
    def of(cls, rule: AlertRule) -> AlertOut:
        return cls(namespace=rule.namespace, name=rule.name, kind=rule.kind, url=rule.url,
                   condition=rule.describe(), state=rule.state.value, firing=rule.firing,
                   value=rule.value, details=rule.spec())


class DefinedAlert(AlertOut):
    secret: str = Field(description="Shown here only: verify deliveries with it.")


class AlertList(Answer):
    alerts: list[AlertOut]


class DeliveryOut(Answer):
    id: int
    event: str
    firing: int | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    body: dict[str, Any]

    @classmethod
    def of(cls, delivery: AlertDelivery) -> DeliveryOut:
        shown = delivery.to_dict()
        return cls(**{name: shown[name] for name in cls.model_fields})


class DeliveryList(Answer):
    deliveries: list[DeliveryOut]


@router.get("", response_model=AlertList, summary="The namespace's alert rules")
def list_alerts(access: Reader) -> AlertList:
    """Each with where it stands; never their secrets."""
    return AlertList(alerts=[AlertOut.of(rule) for rule in access.client.alerts()])


@router.put("/{alert}", response_model=DefinedAlert, summary="Define an alert rule")
def define_alert(access: Admin, alert: str, body: AlertIn) -> DefinedAlert:
    """Create the rule, or replace its definition (where it stands is kept)."""
    rule = access.client.define_alert(new_alert_rule(
        access.namespace, alert, body.kind, url=body.url, secret=body.secret,
        task=body.task, queue=body.queue, priority=body.priority, schedule=body.schedule,
        threshold=body.threshold, window=body.window, min_attempts=body.min_attempts))
    return DefinedAlert(**AlertOut.of(rule).model_dump(), secret=rule.secret)


@router.get("/{alert}", response_model=AlertOut, summary="An alert rule")
def get_alert(access: Reader, alert: str) -> AlertOut:
    return AlertOut.of(access.client.alert(alert))


@router.delete("/{alert}", status_code=204, response_class=Response,
               summary="Remove an alert rule")
def remove_alert(access: Admin, alert: str) -> Response:
    """The rule and its deliveries."""
    access.client.remove_alert(alert)
    return Response(status_code=204)


@router.get("/{alert}/deliveries", response_model=DeliveryList,
            summary="An alert rule's deliveries, newest first")
def deliveries(access: Reader, alert: str,
               limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> DeliveryList:
    return DeliveryList(deliveries=[DeliveryOut.of(d) for d in
                                    access.client.alert_deliveries(alert, limit)])


@router.post("/{alert}/test", response_model=DeliveryOut,
             summary="Send the rule's receiver a test event now")
def test_alert(access: Admin, alert: str) -> DeliveryOut:
    """Signed as every delivery; tried once; the answer says how it went."""
    return DeliveryOut.of(access.client.test_alert(alert))
