"""Scaffold (issue 7 in progress): the security console's web pages."""

from fastapi import APIRouter

router = APIRouter()
