"""Scaffold (issue 7 in progress): the security console's JSON API."""

from fastapi import APIRouter

router = APIRouter()
